"""Step rows → padded tensors, in micro-batches that fit a token budget.

Plumbing only. Each step row becomes one sequence ``prompt_ids + response_ids``
(the tokens exactly as the agent recorded them; nothing is re-tokenized),
right-padded. Loss is only ever taken on the response tokens
(ALGORITHMS.md § The policy loss the trainer shares).

Micro-batches: rows are sorted by length, longest first (a stable sort, so the
plan is deterministic), and packed greedily while ``rows × longest row`` stays
within ``token_budget``; similar lengths end up together, which cuts padding.
A row longer than the budget gets a micro-batch of its own.

A row is anything with ``prompt_ids`` and ``response_ids`` (the agent's
``StepRow``), a mapping with those keys, or a ``(prompt_ids, response_ids)`` pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from itertools import chain

import numpy as np
import torch

__all__ = ["MicroBatch", "row_token_ids", "plan_micro_batches", "collate", "make_micro_batches", "pad_right"]


@dataclass
class MicroBatch:
    """Padded tensors for a few step rows. ``B`` rows, ``L`` longest sequence, ``R`` longest response.

    Attributes:
        input_ids: ``[B, L]`` prompt then response tokens, right-padded with ``pad_id``.
        attention_mask: ``[B, L]`` 1 on real tokens, 0 on padding.
        response_mask: ``[B, L]`` True on the response tokens of ``input_ids`` (where loss applies).
        response_ids: ``[B, R]`` the response tokens alone, right-padded.
        loss_mask: ``[B, R]`` True on real response tokens (response-aligned ``response_mask``).
        prompt_lengths: ``[B]``.
        response_lengths: ``[B]``.
        last_prompt_index: ``[B]`` position of the last prompt token in ``input_ids`` (GAE's value is read here).
        last_response_index: ``[B]`` position of the last response token (SPA's progress is read here);
            the last prompt token for an empty response.
        row_index: ``[B]`` index of each row in the list given to :func:`make_micro_batches`.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    response_mask: torch.Tensor
    response_ids: torch.Tensor
    loss_mask: torch.Tensor
    prompt_lengths: torch.Tensor
    response_lengths: torch.Tensor
    last_prompt_index: torch.Tensor
    last_response_index: torch.Tensor
    row_index: torch.Tensor

    def to(self, device: torch.device | str) -> MicroBatch:
        """The same micro-batch on ``device``."""
        return MicroBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    @property
    def num_rows(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def num_response_tokens(self) -> int:
        return int(self.response_lengths.sum())

    @property
    def num_padded_tokens(self) -> int:
        """``rows × longest sequence``: what the forward pass costs."""
        return int(self.input_ids.numel())


def row_token_ids(row) -> tuple[Sequence[int], Sequence[int]]:
    """``(prompt_ids, response_ids)`` of a step row, a mapping, or a pair."""
    if hasattr(row, "prompt_ids"):
        return row.prompt_ids, row.response_ids
    if isinstance(row, dict):
        return row["prompt_ids"], row["response_ids"]
    if isinstance(row, (tuple, list)) and len(row) == 2:
        return row[0], row[1]
    raise TypeError(
        f"cannot read token ids from a {type(row).__name__}: a row needs prompt_ids and response_ids "
        "(a StepRow, a dict with those keys, or a (prompt_ids, response_ids) pair)"
    )


def pad_right(sequences: Sequence[Sequence], pad_value=0, dtype=torch.long, width: int | None = None) -> torch.Tensor:
    """Right-pad lists to ``[len(sequences), width]`` (default: the longest), vectorized."""
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    width = int(lengths.max(initial=0)) if width is None else width
    np_dtype = torch.empty((), dtype=dtype).numpy().dtype
    flat = np.fromiter(chain.from_iterable(sequences), dtype=np_dtype, count=int(lengths.sum()))
    out = np.full((len(sequences), width), pad_value, dtype=np_dtype)
    out[np.arange(width) < lengths[:, None]] = flat
    return torch.from_numpy(out)


def plan_micro_batches(lengths: Sequence[int] | np.ndarray, token_budget: int) -> list[np.ndarray]:
    """Group row indices so that ``len(group) × max length in group ≤ token_budget``.

    Longest rows first (stable sort: equal lengths keep their order), packed
    greedily. Deterministic for given lengths. A row longer than the budget
    forms a group alone.
    """
    if token_budget < 1:
        raise ValueError(f"token_budget={token_budget} must be >= 1")
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    groups: list[np.ndarray] = []
    start = 0
    while start < order.size:
        longest = max(int(lengths[order[start]]), 1)
        size = max(token_budget // longest, 1)
        groups.append(order[start : start + size])
        start += size
    return groups


def collate(rows: Sequence, indices: Sequence[int] | np.ndarray | None = None, pad_id: int = 0) -> MicroBatch:
    """Pad ``rows[i] for i in indices`` (default: all, in order) into one :class:`MicroBatch`."""
    indices = np.arange(len(rows)) if indices is None else np.asarray(indices, dtype=np.int64)
    prompts, responses = [], []
    for i in indices:
        prompt, response = row_token_ids(rows[int(i)])
        if len(prompt) == 0:
            raise ValueError(f"row {int(i)} has an empty prompt: the first response token needs a preceding token")
        prompts.append(prompt)
        responses.append(response)
    prompt_lengths = torch.tensor([len(p) for p in prompts], dtype=torch.long)
    response_lengths = torch.tensor([len(r) for r in responses], dtype=torch.long)
    total = prompt_lengths + response_lengths
    input_ids = pad_right([list(chain(p, r)) for p, r in zip(prompts, responses)], pad_value=pad_id)
    positions = torch.arange(input_ids.shape[1])
    attention_mask = (positions < total[:, None]).long()
    response_mask = (positions >= prompt_lengths[:, None]) & (positions < total[:, None])
    response_ids = pad_right(responses, pad_value=pad_id)
    loss_mask = torch.arange(response_ids.shape[1]) < response_lengths[:, None]
    return MicroBatch(
        input_ids=input_ids,
        attention_mask=attention_mask,
        response_mask=response_mask,
        response_ids=response_ids,
        loss_mask=loss_mask,
        prompt_lengths=prompt_lengths,
        response_lengths=response_lengths,
        last_prompt_index=prompt_lengths - 1,
        last_response_index=total - 1,
        row_index=torch.from_numpy(indices.copy()),
    )


def make_micro_batches(
    rows: Sequence, token_budget: int, indices: Sequence[int] | np.ndarray | None = None, pad_id: int = 0
) -> list[MicroBatch]:
    """Micro-batches of ``rows[i] for i in indices`` (default: all rows) within ``token_budget`` padded tokens.

    ``MicroBatch.row_index`` refers to positions in ``rows``. See the module
    docstring for the packing rule.
    """
    indices = np.arange(len(rows)) if indices is None else np.asarray(indices, dtype=np.int64)
    lengths = np.fromiter((sum(map(len, row_token_ids(rows[int(i)]))) for i in indices), np.int64, len(indices))
    return [collate(rows, indices[group], pad_id) for group in plan_micro_batches(lengths, token_budget)]
