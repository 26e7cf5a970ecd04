"""EMPG: Entropy-Modulated Policy Gradients (Wang et al. 2025, arXiv 2509.09265), a modifier of any estimator.

EMPG does not estimate advantages; it rescales the advantages some estimator gave
(GRPO's in the paper, any registered one here) by how certain the policy was at each
step, and adds a bonus for steps that lead to a confident next step:

    H_t       mean token entropy of step t's response, recorded when it was sampled
    H̃_t      = (H_t − min H) / (max H − min H + ε)                   batch min-max  (Eq. 12)
    g(H_t)    = exp(−k · H̃_t) / (mean exp(−k · H̃) + ε)              self-calibrating scale (Eq. 10)
    f(H_t)    = exp(−k_f · H̃_t)                                     future-clarity bonus (Eq. 11)
    A'_t      = g(H_t) · A_t + ζ · f(H_{t+1})                        f of the same trajectory's next step;
                                                                     no bonus on its last step
    A''_t     = A'_t − mean A'                                       zero mean over the batch

min, max and both means run over all step rows of the batch (every row weighs the
same, invalid-action rows included: EMPG looks only at entropies). g has batch mean
exactly 1 − O(ε), so it only moves credit between confident and uncertain steps;
confident steps (low H) get |A| amplified, uncertain ones attenuated.

Sources. The authors publish no code repository; their project page
(empgseed-seed.github.io) gives pseudocode, which is the reference for Eq. 10–12
as written above (its numbering), for the defaults ``k = 1.0``, ``k_f = 1.0``,
``zeta = 0.1`` and ε = 1e-8, and for the parameter names (``k``, ``k_f``, ``zeta``).
The part of the pseudocode that could be read stops before the advantages are
combined, so the combination and the final centring follow the paper's description as
summarized in docs/algorithms.md § EMPG. Where our rows differ from the reference's
layout: the pseudocode averages the old policy's token entropies over each assistant
segment of a concatenated multi-turn sequence; here each step row is one turn and its
entropy is recorded by the engine at sampling time (the same distribution for
on-policy rollouts), and the centring weighs every step row once (the trainer
broadcasts one advantage per row), where a token-level centring would weigh rows by
their length.

Use it directly, ``credit.empg(batch, credit.estimate("grpo", batch))``, or in a run
config (``credit.modifier: empg``, ``credit.modifier_params: {k: 1.0, ...}``).
"""

from __future__ import annotations

import inspect
import numbers

import numpy as np

from .batch import StepBatch

__all__ = ["empg", "check_params", "components", "diagnostics", "MODIFIERS", "modify", "check_modifier"]

DEFAULTS = {"k": 1.0, "k_f": 1.0, "zeta": 0.1, "eps": 1e-8}  # the project page's pseudocode


def check_params(*, k: float = 1.0, k_f: float = 1.0, zeta: float = 0.1, eps: float = 1e-8) -> None:
    """Raise ``ValueError`` naming the parameter if a value is out of range (k, k_f, zeta ≥ 0 finite; eps > 0)."""
    for name, value in (("k", k), ("k_f", k_f), ("zeta", zeta)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
            raise ValueError(f"empg: {name}={value!r} must be a finite number >= 0")
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not np.isfinite(eps) or not eps > 0:
        raise ValueError(f"empg: eps={eps!r} must be a finite number > 0")


def step_entropy(batch: StepBatch) -> np.ndarray:
    """The batch's per-row entropies, or a ``ValueError`` that says why they are missing."""
    if batch.entropy is None:
        raise ValueError(
            "EMPG needs each step row's mean token entropy (StepBatch(entropy=...), StepRow.entropy), and this "
            "batch has none. The engine records it at sampling time (HFEngine always; VLLMEngine unless "
            "entropy_top_k=0); rows from a custom engine without Completion.entropy, or episodes saved before "
            "entropies were recorded, lack it.")
    missing = np.isnan(batch.entropy)
    if np.any(missing):
        row = int(np.flatnonzero(missing)[0])
        raise ValueError(f"EMPG needs each step row's entropy, but {int(missing.sum())} of {len(batch)} rows have "
                         f"none (first: row {row}, trajectory {batch.traj_id[row]!r}, step {int(batch.step[row])}); "
                         "mixed batches come from rows of engines or files that did not record it")
    return batch.entropy


def components(batch: StepBatch, advantages, *, k: float = 1.0, k_f: float = 1.0, zeta: float = 0.1,
               eps: float = 1e-8) -> dict[str, np.ndarray]:
    """EMPG's pieces, one value per row in the batch's row order.

    ``h_norm`` (H̃, Eq. 12), ``g`` (Eq. 10), ``f`` (Eq. 11, of the row's own step),
    ``bonus`` (ζ · f(H_{t+1}), 0 on a trajectory's last step), ``modulated`` (A'),
    ``advantages`` (A'' = A' − mean A', what :func:`empg` returns).
    """
    check_params(k=k, k_f=k_f, zeta=zeta, eps=eps)
    advantages = np.asarray(advantages, dtype=np.float64)
    if advantages.shape != (len(batch),):
        raise ValueError(f"empg: advantages has shape {advantages.shape}; expected ({len(batch)},), one per step row")
    if not np.all(np.isfinite(advantages)):
        row = int(np.flatnonzero(~np.isfinite(advantages))[0])
        raise ValueError(f"empg: advantages[{row}] = {advantages[row]} is not finite")
    entropy = step_entropy(batch)
    if len(batch) == 0:
        empty = np.zeros(0)
        return {name: empty for name in ("h_norm", "g", "f", "bonus", "modulated", "advantages")}
    # canonical order (step-major, see StepBatch): the batch sums below then run in one fixed
    # order, so permuting the rows permutes the output bit for bit
    h = batch.canonical(entropy)
    h_norm = (h - h.min()) / (h.max() - h.min() + eps)  # Eq. 12
    g = np.exp(-k * h_norm)
    g /= g.mean() + eps  # Eq. 10
    f = np.exp(-k_f * h_norm)  # Eq. 11
    bonus = np.zeros_like(f)  # ζ·f(H_{t+1}): block t's first active[t+1] slots go on to step t+1
    offset, active = batch.step_offset, batch.active
    for t in range(active.size - 1):
        width = active[t + 1]
        bonus[offset[t]:offset[t] + width] = f[offset[t + 1]:offset[t + 1] + width]
    bonus *= zeta
    modulated = batch.canonical(advantages) * g + bonus
    centred = modulated - modulated.mean()
    return {name: batch.to_rows(values) for name, values in (
        ("h_norm", h_norm), ("g", g), ("f", f), ("bonus", bonus), ("modulated", modulated), ("advantages", centred))}


def empg(batch: StepBatch, advantages, *, k: float = 1.0, k_f: float = 1.0, zeta: float = 0.1,
         eps: float = 1e-8) -> np.ndarray:
    """EMPG-modulated advantages, one float64 per row in the batch's row order (module docstring).

    Args:
        batch: the step rows; needs ``batch.entropy`` on every row.
        advantages: the estimator's advantages, one per row (``credit.estimate(...)``).
        k: steepness of the self-calibrating scale g (Eq. 10); 0 turns it off (g = 1/(1+ε)).
        k_f: steepness of the future-clarity bonus f (Eq. 11) (the pseudocode's ``k_f``; the paper's k').
        zeta: ζ, weight of the bonus; 0 turns it off.
        eps: ε of Eq. 10 and 12.

    What holds exactly: the output has batch mean 0 (up to rounding); with ``zeta=0`` and
    equal entropies it is ``A/(1+ε) − mean(A)/(1+ε)``; a batch of one row gets 0.
    """
    return components(batch, advantages, k=k, k_f=k_f, zeta=zeta, eps=eps)["advantages"]


def diagnostics(batch: StepBatch, advantages, **params) -> dict[str, float]:
    """EMPG's own metrics (``credit/empg_*``) for the estimator's ``advantages``; ``params`` as :func:`empg`.

        entropy_mean, entropy_std, entropy_min, entropy_max    step entropies H (nats)
        g_min, g_max          range of the scale g (Eq. 10; batch mean ≈ 1)
        bonus_mean            mean ζ·f(H_{t+1}) over rows (0 on last steps)
        shift                 the batch mean subtracted at the end
    """
    parts = components(batch, advantages, **params)
    entropy = batch.entropy
    if len(batch) == 0:
        return {}
    return {
        "credit/empg_entropy_mean": float(entropy.mean()),
        "credit/empg_entropy_std": float(entropy.std()),
        "credit/empg_entropy_min": float(entropy.min()),
        "credit/empg_entropy_max": float(entropy.max()),
        "credit/empg_g_min": float(parts["g"].min()),
        "credit/empg_g_max": float(parts["g"].max()),
        "credit/empg_bonus_mean": float(parts["bonus"].mean()),
        "credit/empg_shift": float(parts["modulated"].mean()),
    }


# --- modifiers by name: what a run config's `credit.modifier` may say -----------------------------
# (EMPG is the only one; a second modifier would move this table to a module of its own)

MODIFIERS = {"empg": (empg, diagnostics, check_params)}  # name -> (fn, diagnostics, parameter check)


def check_modifier(name: str, params: dict) -> None:
    """Raise ``ValueError`` if ``name`` is not a modifier, or ``params`` has a key it does not take or a bad value."""
    if name not in MODIFIERS:
        raise ValueError(f"unknown credit modifier {name!r}; available: {', '.join(sorted(MODIFIERS))}")
    fn, _, check = MODIFIERS[name]
    accepted = sorted(p.name for p in inspect.signature(fn).parameters.values() if p.kind is p.KEYWORD_ONLY)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(f"credit modifier {name!r} got unknown parameter {unknown[0]!r}; it accepts: "
                         f"{', '.join(accepted)}")
    check(**params)


def modify(name: str, batch: StepBatch, advantages, **params) -> tuple[np.ndarray, dict]:
    """``(modified advantages, the modifier's metrics)`` for the named modifier (``"empg"``)."""
    check_modifier(name, params)
    fn, own_diagnostics, _ = MODIFIERS[name]
    modified = np.asarray(fn(batch, advantages, **params), dtype=np.float64)
    return modified, own_diagnostics(batch, advantages, **params)
