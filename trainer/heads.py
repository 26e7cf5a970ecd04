"""Scalar heads on the policy's backbone: GAE's value head and SPA's progress estimator.

docs/algorithms.md § SPA (progress estimator) and § PPO with a critic (value head).

The choice made here (documented in the issue): a head is a small module
(linear by default, the SPA reference code's "linear head on the last token";
``HeadConfig.hidden > 0`` adds one hidden layer) that reads the *policy's own*
backbone hidden states, computed under ``no_grad``. Only the head is trained;
the backbone is shared and frozen for the head's loss. Consequences:

* One copy of the LLM in memory for every method, `spa` and `gae` included,
  and the head costs one extra no-grad forward pass per iteration
  (``head.features(rows)``; pass the result to both ``predict`` and
  ``update`` to share it).
* The head never pulls the policy toward its own objective. The price: it sees
  the policy's features as they are; the SPA and PPO reference codes also
  fine-tune a backbone for the estimator / critic, which is left out here.

Where a head reads:

* value head: at the **last prompt token** of each step row, i.e. V(s_t)
  before the action is generated (one value per step row).
* progress estimator: at the **last response token** of each step row (the
  end of the assistant turn, as in the SPA reference code): ĉ_t credits the
  action just taken.

How the progress estimator fits (``HeadConfig.solver``): ``"adam"`` takes
``epochs`` × minibatches of AdamW steps on ``(Σ_t ĉ_t − R)²``, as the reference
code trains its head; ``"ridge"`` sets a linear head to the exact ridge-regression
minimizer of that loss on the iteration's trajectories (closed form, float64).

All of the above is the progress head's ``mode: online`` (the default). ``mode:
reference`` is SPA's estimator as its reference code trains it: a separate, fully
fine-tuned copy of the SFT policy, fitted once before RL and then frozen
(trainer/progress.py). :func:`make_head` picks the class; the recipe calls every head
the same way (``prepare`` once before RL, then ``features``, ``before_credit`` and
``after_credit`` every iteration).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from steprl.trainer.batching import make_micro_batches, row_token_ids
from steprl.trainer.config import HeadConfig
from steprl.trainer.loss import value_loss
from steprl.trainer.policy import Policy

__all__ = ["ScalarHead", "ValueHead", "ProgressEstimator", "HEADS", "make_head", "make_heads", "trajectory_codes"]

DEFAULT_TOKEN_BUDGET = 4096


class ScalarHead(nn.Module):
    """``[N, H] → [N]``: linear, or Linear–GELU–Linear when ``hidden > 0``. The output layer starts at zero."""

    def __init__(self, in_features: int, hidden: int = 0):
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(in_features, hidden), nn.GELU()] if hidden > 0 else []
        out = nn.Linear(hidden if hidden > 0 else in_features, 1)
        nn.init.zeros_(out.weight)
        nn.init.zeros_(out.bias)
        self.net = nn.Sequential(*layers, out)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features).squeeze(-1)


class _BackboneHead:
    """A :class:`ScalarHead` reading the policy backbone at one token per step row, with its own AdamW."""

    read_at: str  # "last_prompt" or "last_response"
    name: str  # metric namespace

    def __init__(self, policy: Policy, config: HeadConfig, *, token_budget: int = DEFAULT_TOKEN_BUDGET, seed: int = 0):
        self.policy = policy
        self.config = config
        self.token_budget = token_budget
        if config.read_at is not None:
            self.read_at = config.read_at
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.head = ScalarHead(policy.hidden_size, config.hidden).to(policy.device)
        self.optimizer = torch.optim.AdamW(self.head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.updates = 0

    @torch.no_grad()
    def features(self, rows: Sequence) -> torch.Tensor:
        """``[len(rows), H]`` fp32 backbone hidden states at this head's read position (no grad)."""
        out = torch.zeros(len(rows), self.policy.hidden_size, dtype=torch.float32, device=self.policy.device)
        for micro in make_micro_batches(rows, self.token_budget, pad_id=self.policy.pad_id):
            micro = micro.to(self.policy.device)
            hidden = self.policy.last_hidden_states(micro)
            position = micro.last_prompt_index if self.read_at == "last_prompt" else micro.last_response_index
            picked = hidden[torch.arange(micro.num_rows, device=hidden.device), position]
            out[micro.row_index] = picked.float()
        return out

    @torch.no_grad()
    def predict(self, rows: Sequence, features: torch.Tensor | None = None) -> np.ndarray:
        """One float per row (row order)."""
        features = self.features(rows) if features is None else features
        return self.head(features).double().cpu().numpy()

    # The recipe's calls (trainer.loop): ``prepare`` once before RL; then every iteration
    # ``before_credit`` fills the StepBatch field the estimator's spec names (``self.name``),
    # ``after_credit`` sees the advantages.
    def prepare(self, run) -> dict[str, float]:
        """Fitting done once, after the SFT warm start and before RL (none for an online head)."""
        return {}

    def before_credit(self, rows: Sequence, features: torch.Tensor) -> tuple[np.ndarray, dict[str, float]]:
        """The field's value per row, and the metrics of any fitting done first."""
        return self.predict(rows, features=features), {}

    def after_credit(self, rows: Sequence, advantages: np.ndarray, filled: np.ndarray,
                     features: torch.Tensor) -> dict[str, float]:
        """Fitting that needs the advantages; returns its metrics."""
        return {}

    def _step(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(self.head.parameters(), self.config.max_grad_norm)
        self.optimizer.step()

    def state_dict(self) -> dict:
        return {"head": self.head.state_dict(), "optimizer": self.optimizer.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.head.load_state_dict(state["head"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state["updates"])


class ValueHead(_BackboneHead):
    """GAE's critic V(s_t), read at the last prompt token (docs/algorithms.md § PPO with a critic).

    Example:
        >>> values = value_head.predict(rows)                                  # before credit
        >>> adv = credit.estimate("gae", batch.replace(value=values), ...)
        >>> value_head.update(rows, returns=adv + values, old_values=values)
    """

    read_at = "last_prompt"
    name = "value"

    def after_credit(self, rows, advantages, filled, features) -> dict[str, float]:
        """Regress V on the returns Â + V_old (the value loss's target)."""
        return self.update(rows, returns=advantages + filled, old_values=filled, features=features)

    def update(
        self, rows: Sequence, returns, old_values, features: torch.Tensor | None = None
    ) -> dict[str, float]:
        """Fit V to ``returns`` (``Â + V_old``) with PPO's clipped value loss, ``epochs`` × shuffled minibatches.

        Returns ``value/loss`` (last epoch mean), ``value/mse`` (over all rows after the update),
        ``value/clip_frac``.
        """
        n = len(rows)
        returns_t = _per_row("returns", returns, n, self.policy.device)
        old_t = _per_row("old_values", old_values, n, self.policy.device)
        features = self.features(rows) if features is None else features
        self.updates += 1
        rng = np.random.default_rng([self.updates, n])
        losses, clip_fracs = [], []
        for _epoch in range(self.config.epochs):
            losses, clip_fracs = [], []
            for idx in _minibatches(rng.permutation(n), self.config.minibatch_size):
                idx_t = torch.as_tensor(idx, device=features.device)
                loss, stats = value_loss(self.head(features[idx_t]), old_t[idx_t], returns_t[idx_t],
                                         self.config.value_clip)
                self._step(loss)
                losses.append(float(loss.detach()))
                clip_fracs.append(stats["value_clip_frac"])
        with torch.no_grad():
            mse = float(((self.head(features) - returns_t) ** 2).mean()) if n else 0.0
        return {
            "value/loss": float(np.mean(losses)) if losses else 0.0,
            "value/mse": mse,
            "value/clip_frac": float(np.mean(clip_fracs)) if clip_fracs else 0.0,
        }


class ProgressEstimator(_BackboneHead):
    """SPA's progress estimator ĉ_t, read at the last response token (docs/algorithms.md § SPA, step 1).

    Trained per trajectory with ``(Σ_t ĉ_t − R_final)²``; ``R_final`` defaults to
    the episode return ``Σ_t r_t`` of the trajectory's rows (equal to the final
    reward when only the last step is rewarded).

    Example:
        >>> features = progress.features(rows)
        >>> metrics = progress.update(rows, features=features)   # on the collected trajectories
        >>> contributions = progress.predict(rows, features=features)
        >>> adv = credit.estimate("spa", batch.replace(progress=contributions))
    """

    read_at = "last_response"
    name = "progress"

    def before_credit(self, rows, features) -> tuple[np.ndarray, dict[str, float]]:
        """Fit on this iteration's trajectories first, then predict ĉ_t."""
        metrics = self.update(rows, features=features)
        return self.predict(rows, features=features), metrics

    def __init__(self, policy: Policy, config: HeadConfig, **kwargs):
        super().__init__(policy, config, **kwargs)
        self._replay: list[tuple[int, list, np.ndarray, torch.Tensor]] = []  # (n_traj, token pairs, codes, targets)

    def update(self, rows: Sequence, final_return=None, features: torch.Tensor | None = None) -> dict[str, float]:
        """Train on the rows' trajectories: ``epochs`` × shuffled minibatches of AdamW steps, or,
        with ``solver="ridge"``, the exact ridge fit of the linear head to these trajectories.

        Args:
            rows: step rows with ``traj_id`` and ``reward``.
            final_return: optional per-row ``R_final`` of the row's trajectory
                (read from the first row of each trajectory); default ``Σ_t r_t``.
            features: from :meth:`features` on the same rows, to skip the forward pass.

        Returns:
            ``progress/mse_before`` and ``progress/mse``: mean over trajectories of
            ``(Σ_t ĉ_t − R_final)²`` over these rows' trajectories before and after the
            update; ``progress/trajectories``; ``progress/fit_trajectories`` (with ``replay``,
            these plus the replayed iterations' trajectories that the ridge fit used).
        """
        n = len(rows)
        device = self.policy.device
        codes, n_traj = trajectory_codes([_field(row, "traj_id") for row in rows])
        codes_t = torch.as_tensor(codes, device=device)
        if final_return is None:
            rewards = torch.as_tensor([float(_field(row, "reward")) for row in rows], device=device)
            target = torch.zeros(n_traj, device=device).index_add_(0, codes_t, rewards)
        else:
            per_row = _per_row("final_return", final_return, n, device)
            target = torch.zeros(n_traj, device=device)
            first = np.unique(codes, return_index=True)[1]
            target[codes_t[first]] = per_row[first]
        features = self.features(rows) if features is None else features
        fit = (features, codes_t, n_traj, target)  # what the ridge solver fits
        if self.config.replay and n:
            if self._replay:  # earlier iterations' trajectories join the fit (not the reported MSE)
                fit = self._with_replay(*fit)
            self._replay.append((n_traj, [_token_pair(row) for row in rows], codes, target.detach().cpu()))
            del self._replay[: -self.config.replay]

        def mse(selected_traj: torch.Tensor | None = None) -> torch.Tensor:
            if selected_traj is None:
                sums = torch.zeros(n_traj, device=device).index_add_(0, codes_t, self.head(features))
                return ((sums - target) ** 2).mean()
            row_sel = torch.isin(codes_t, selected_traj)
            local = torch.searchsorted(selected_traj, codes_t[row_sel])  # selected_traj is sorted
            sums = torch.zeros(selected_traj.numel(), device=device).index_add_(0, local, self.head(features[row_sel]))
            return ((sums - target[selected_traj]) ** 2).mean()

        with torch.no_grad():
            before = float(mse()) if n else 0.0
        self.updates += 1
        if self.config.solver == "ridge":
            if n:
                self._fit_ridge(*fit)
        else:
            rng = np.random.default_rng([self.updates, n])
            for _epoch in range(self.config.epochs):
                for chosen in _minibatches(rng.permutation(n_traj), self.config.minibatch_size):
                    self._step(mse(torch.as_tensor(np.sort(chosen), device=device)))
        with torch.no_grad():
            after = float(mse()) if n else 0.0
        return {"progress/mse_before": before, "progress/mse": after, "progress/trajectories": float(n_traj),
                "progress/fit_trajectories": float(fit[2])}

    def _with_replay(self, features: torch.Tensor, codes: torch.Tensor, n_traj: int, target: torch.Tensor):
        """(features, traj codes, trajectory count, targets): this batch's, then the replayed iterations'."""
        all_features, all_codes, all_target = [features], [codes], [target]
        offset = n_traj
        for count, pairs, old_codes, old_target in self._replay:
            all_features.append(self.features(pairs))
            all_codes.append(torch.as_tensor(old_codes, device=codes.device) + offset)
            all_target.append(old_target.to(target))
            offset += count
        return torch.cat(all_features), torch.cat(all_codes), offset, torch.cat(all_target)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "replay": list(self._replay)}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._replay = list(state.get("replay", []))

    @torch.no_grad()
    def _fit_ridge(self, features: torch.Tensor, codes: torch.Tensor, n_traj: int, target: torch.Tensor) -> None:
        """Set the linear head to the exact minimizer of ``Σ_τ (Σ_t ĉ_t − R_τ)² + λ‖w‖²``.

        With ĉ_t = w·x_t + b, a trajectory's sum is ``w·S_τ + b·T_τ`` (S_τ = Σ_t x_t,
        T_τ its length): ordinary ridge regression on ``[S_τ, T_τ]``, the bias unpenalized.
        λ = ``ridge`` × trace(SᵀS) / H. Solved in float64 on the CPU (a tiny system).
        """
        x = features.detach().to("cpu", torch.float64)
        idx = codes.detach().to("cpu")
        sums = torch.zeros(n_traj, x.shape[1], dtype=torch.float64).index_add_(0, idx, x)
        lengths = torch.bincount(idx, minlength=n_traj).to(torch.float64)
        design = torch.cat([sums, lengths[:, None]], dim=1)
        scale = float((sums * sums).sum()) / x.shape[1] or 1.0
        penalty = torch.full((design.shape[1],), self.config.ridge * scale, dtype=torch.float64)
        penalty[-1] = 1e-9 * scale  # bias: effectively unpenalized, but the system stays solvable
        gram = design.T @ design + torch.diag(penalty)
        theta = torch.linalg.solve(gram, design.T @ target.detach().to("cpu", torch.float64))
        out = self.head.net[-1]
        out.weight.copy_(theta[:-1].reshape_as(out.weight).to(out.weight))
        out.bias.copy_(theta[-1:].to(out.bias))


HEADS = {"value": ValueHead, "progress": ProgressEstimator}
"""Head kinds an estimator's spec can name (``credit.register(..., head=KIND)``), in their online mode."""


def make_head(kind: str, policy: Policy, trainer_config, seed: int = 0):
    """The head of ``kind`` with its config from ``trainer_config.{kind}_head``: the online head, or with
    ``mode: reference`` SPA's reference estimator (:class:`trainer.progress.ReferenceProgressEstimator`)."""
    if kind not in HEADS:
        raise ValueError(f"unknown head {kind!r}; known: {', '.join(HEADS)}")
    config = getattr(trainer_config, f"{kind}_head")
    if config.mode == "reference":
        from steprl.trainer.progress import ReferenceProgressEstimator

        return ReferenceProgressEstimator(policy, config, token_budget=trainer_config.micro_batch_tokens, seed=seed)
    return HEADS[kind](policy, config, seed=seed)


def make_heads(credit_config, policy: Policy, trainer_config, seed: int = 0) -> dict:
    """The heads a run fits, by checkpoint component name: ``"head"`` for the one the estimator's spec names
    (as runs have always saved it), ``"{kind}_head"`` for one only ``credit.reward`` asks for (SPA's
    progress estimator under ``reward: spa``). Kinds from ``credit_config.heads``; empty when none."""
    heads = {}
    for i, kind in enumerate(credit_config.heads):
        name = "head" if i == 0 and kind == credit_config.spec.head else f"{kind}_head"
        heads[name] = make_head(kind, policy, trainer_config, seed=seed)
    return heads


def trajectory_codes(traj_ids: Sequence) -> tuple[np.ndarray, int]:
    """Integer code per row for its ``traj_id`` (first-appearance order) and the number of trajectories."""
    index: dict = {}
    codes = np.fromiter((index.setdefault(t, len(index)) for t in traj_ids), dtype=np.int64, count=len(traj_ids))
    return codes, len(index)


def _token_pair(row) -> tuple[list[int], list[int]]:
    prompt, response = row_token_ids(row)
    return list(prompt), list(response)


def _minibatches(order: np.ndarray, size: int):
    for start in range(0, order.size, size):
        yield order[start : start + size]


def _field(row, name: str):
    value = row.get(name) if isinstance(row, dict) else getattr(row, name, None)
    if value is None:
        raise ValueError(f"a step row has no {name!r}: the progress estimator needs traj_id and reward per row")
    return value


def _per_row(name: str, values, n: int, device) -> torch.Tensor:
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (n,):
        raise ValueError(f"{name} has shape {array.shape}; expected ({n},), one float per step row")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} has non-finite entries at rows {np.flatnonzero(~np.isfinite(array))[:5].tolist()}")
    return torch.as_tensor(array, dtype=torch.float32, device=device)
