"""Step rows → padded tensors, in micro-batches that fit a token budget.

Plumbing only. Each step row becomes one sequence ``prompt_ids + response_ids``
(the tokens exactly as the agent recorded them; nothing is re-tokenized).
Prompts are left-padded and responses right-padded, so that every row's
response starts at the same column ``P`` (the longest prompt), as in the
engines' left-padded generation; ``position_ids`` count real tokens only, so
each row sees the positions it had when it was sampled. The log-probs then need
the LM head on the last ``R + 1`` columns alone (``R`` the longest response):
prompt logits, most of the activation memory with a large vocabulary, are
never computed. Loss is only ever taken on the response tokens
(docs/algorithms.md § The policy loss the trainer shares).

Micro-batches: rows are sorted by length, longest first (a stable sort, so the
plan is deterministic), and packed greedily while ``rows × (longest prompt +
longest response)`` stays within ``token_budget``; similar lengths end up
together, which cuts padding. A row longer than the budget gets a micro-batch
of its own.

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
    """Padded tensors for a few step rows. ``B`` rows, ``P`` longest prompt, ``R`` longest response.

    Row ``i`` (prompt length ``p``, response length ``r``) fills columns ``[P − p, P + r)``
    of ``input_ids``: its prompt ends at column ``P − 1`` and its response starts at ``P``.

    Attributes:
        input_ids: ``[B, P + R]`` left-padded prompt, then right-padded response, padded with ``pad_id``.
        attention_mask: ``[B, P + R]`` 1 on real tokens, 0 on padding.
        position_ids: ``[B, P + R]`` position of each real token in its own sequence (0 on left padding).
        response_mask: ``[B, P + R]`` True on the response tokens of ``input_ids`` (where loss applies).
        response_ids: ``[B, R]`` the response tokens alone, right-padded (= ``input_ids[:, P:]``).
        loss_mask: ``[B, R]`` True on real response tokens (response-aligned ``response_mask``).
        prompt_lengths: ``[B]``.
        response_lengths: ``[B]``.
        last_prompt_index: ``[B]`` column of the last prompt token (``P − 1``; GAE's value is read here).
        last_response_index: ``[B]`` column of the last response token (SPA's progress is read here);
            the last prompt token for an empty response.
        row_index: ``[B]`` index of each row in the list given to :func:`make_micro_batches`.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
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
        """``rows × (longest prompt + longest response)``: what the forward pass costs."""
        return int(self.input_ids.numel())

    @property
    def prompt_width(self) -> int:
        """``P``: the column where every response starts."""
        return int(self.input_ids.shape[1] - self.response_ids.shape[1])


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


def pad_right(sequences: Sequence[Sequence], pad_value=0, dtype=torch.long, width: int | None = None,
              *, left: bool = False) -> torch.Tensor:
    """Right-pad lists to ``[len(sequences), width]`` (default: the longest), vectorized; ``left`` pads on the left."""
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    width = int(lengths.max(initial=0)) if width is None else width
    np_dtype = torch.empty((), dtype=dtype).numpy().dtype
    flat = np.fromiter(chain.from_iterable(sequences), dtype=np_dtype, count=int(lengths.sum()))
    out = np.full((len(sequences), width), pad_value, dtype=np_dtype)
    columns = np.arange(width)
    out[columns >= width - lengths[:, None] if left else columns < lengths[:, None]] = flat
    return torch.from_numpy(out)


def plan_micro_batches(
    prompt_lengths: Sequence[int] | np.ndarray, response_lengths: Sequence[int] | np.ndarray, token_budget: int
) -> list[np.ndarray]:
    """Group row indices so that ``len(group) × (longest prompt + longest response) ≤ token_budget``.

    Longest rows (prompt + response) first, stable sort (equal lengths keep their
    order), packed greedily. Deterministic for given lengths. A row longer than
    the budget forms a group alone.
    """
    if token_budget < 1:
        raise ValueError(f"token_budget={token_budget} must be >= 1")
    prompt_lengths = np.asarray(prompt_lengths, dtype=np.int64)
    response_lengths = np.asarray(response_lengths, dtype=np.int64)
    if prompt_lengths.shape != response_lengths.shape:
        raise ValueError(f"{prompt_lengths.size} prompt lengths but {response_lengths.size} response lengths")
    order = np.argsort(-(prompt_lengths + response_lengths), kind="stable")
    prompts, responses = prompt_lengths[order], response_lengths[order]
    groups: list[np.ndarray] = []
    start = 0
    while start < order.size:
        # a group holds at most `token_budget` rows (each costs ≥ 1); its cost grows with every row added
        stop = min(order.size, start + token_budget)
        widths = np.maximum.accumulate(prompts[start:stop]) + np.maximum.accumulate(responses[start:stop])
        cost = np.arange(1, stop - start + 1) * np.maximum(widths, 1)
        size = max(int(np.searchsorted(cost, token_budget, side="right")), 1)
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
    prompt_ids = pad_right(prompts, pad_value=pad_id, left=True)
    width = prompt_ids.shape[1]
    shift = width - prompt_lengths  # left padding of each row
    response_ids = pad_right(responses, pad_value=pad_id)
    input_ids = torch.cat([prompt_ids, response_ids], dim=1)
    columns = torch.arange(input_ids.shape[1])
    total = width + response_lengths
    attention_mask = ((columns >= shift[:, None]) & (columns < total[:, None])).long()
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    response_mask = (columns >= width) & (columns < total[:, None])
    loss_mask = torch.arange(response_ids.shape[1]) < response_lengths[:, None]
    return MicroBatch(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        response_mask=response_mask,
        response_ids=response_ids,
        loss_mask=loss_mask,
        prompt_lengths=prompt_lengths,
        response_lengths=response_lengths,
        last_prompt_index=torch.full_like(prompt_lengths, width - 1),
        last_response_index=total - 1,
        row_index=torch.from_numpy(indices.copy()),
    )


def make_micro_batches(
    rows: Sequence, token_budget: int, indices: Sequence[int] | np.ndarray | None = None, pad_id: int = 0
) -> list[MicroBatch]:
    """Micro-batches of ``rows[i] for i in indices`` (default: all rows) within ``token_budget`` padded tokens.

    ``MicroBatch.row_index`` refers to positions in ``rows``. See the module
    docstring for the layout and the packing rule.
    """
    indices = np.arange(len(rows)) if indices is None else np.asarray(indices, dtype=np.int64)
    pairs = [row_token_ids(rows[int(i)]) for i in indices]
    prompt_lengths = np.fromiter((len(p) for p, _ in pairs), np.int64, len(pairs))
    response_lengths = np.fromiter((len(r) for _, r in pairs), np.int64, len(pairs))
    return [collate(rows, indices[group], pad_id)
            for group in plan_micro_batches(prompt_lengths, response_lengths, token_budget)]
