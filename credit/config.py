"""``CreditConfig``: which estimator a run uses and with what parameters."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["CreditConfig"]


class CreditConfig(BaseModel):
    """Credit assignment of a run (docs/algorithms.md)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    estimator: str = "gigpo"
    """One of ``credit.available()``: grpo, rloo, loop, gigpo, hgpo, graphgpo, pgpo, gagpo, proxmo, spa, gae (or a registered one)."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Keyword parameters of the estimator (e.g. gamma, step_weight, normalize for gigpo)."""
    drop_threshold: float | None = Field(default=None, ge=0)
    """Drop rows with |A| below this from the update; None = the estimator's default (0.01 for loop, else off)."""
    modifier: str | None = None
    """Applied to the estimator's advantages before the update, with any estimator: ``empg`` (EMPG, needs the
    rows' entropies, docs/credit.md § EMPG), or None."""
    modifier_params: dict[str, Any] = Field(default_factory=dict)
    """Keyword parameters of the modifier (empg: k, k_f, zeta, eps)."""
    reward: Literal["env", "spa"] = "env"
    """The per-step reward the estimator sees. ``env``: the env's r_t. ``spa``: SPA's stepwise reward
    r̃_t = α·ĉ_t + β·g_t (``credit.spa.stepwise_reward``) replaces it, ĉ_t from the progress estimator
    (``trainer.progress_head``, which the run then fits; ``mode: reference`` is the SPA reference code's),
    so gae (PPO with a critic, as the reference trains), grpo, gigpo, ... all optimize the same dense
    rewards. Not with ``spa``, which builds r̃_t itself from ``params`` (docs/credit.md § SPA in its
    reference form)."""
    reward_params: dict[str, Any] = Field(default_factory=dict)
    """With ``reward: spa``: keyword parameters of ``credit.spa.stepwise_reward``: ``alpha`` (1.0),
    ``beta`` (0.5), ``grounding`` (``"valid"``, or ``"reference"``: the last step always counts as grounded),
    ``sum_to_outcome`` (False; True shifts each trajectory's ĉ_t to sum to its actual reward, so online RL
    cannot exploit the frozen estimator)."""

    @model_validator(mode="after")
    def _known_estimator_and_params(self) -> "CreditConfig":
        from steprl.credit.registry import check_params

        try:
            check_params(self.estimator, self.params)
        except TypeError as exc:  # pydantic reports ValueErrors with the field name
            raise ValueError(str(exc)) from None
        from steprl.credit.registry import ROW_FIELDS

        spec = self.spec
        unfilled = sorted(spec.needs - set(ROW_FIELDS) - ({spec.head} if spec.head else set()))
        if unfilled:
            raise ValueError(f"estimator {self.estimator!r} needs the step rows' {', '.join(unfilled)}, which only a "
                             "head fills in training: register it with head=...")
        from steprl.credit.empg import MODIFIERS, check_modifier

        if self.modifier is None:
            if self.modifier_params:
                raise ValueError(f"credit.modifier_params={self.modifier_params!r} is set but credit.modifier is not")
        elif self.modifier not in MODIFIERS:
            raise ValueError(f"credit.modifier={self.modifier!r} is not one of: {', '.join(sorted(MODIFIERS))}")
        else:
            try:
                check_modifier(self.modifier, self.modifier_params)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"credit.modifier_params: {exc}") from None
        self._check_reward()
        return self

    def _check_reward(self) -> None:
        if self.reward == "env":
            if self.reward_params:
                raise ValueError(f"credit.reward_params={self.reward_params!r} is set but credit.reward is 'env'; "
                                 "set credit.reward=spa to train on SPA's stepwise rewards")
            return
        if self.spec.head == "progress":
            raise ValueError(f"credit.reward={self.reward!r} with estimator {self.estimator!r}: the estimator already "
                             "builds the stepwise reward from the progress estimator's ĉ_t; leave credit.reward=env "
                             "and give alpha/beta/grounding in credit.params")
        import inspect

        import numpy as np

        from steprl.credit.batch import StepBatch
        from steprl.credit.spa import stepwise_reward

        accepted = [name for name, p in inspect.signature(stepwise_reward).parameters.items()
                    if p.kind is inspect.Parameter.KEYWORD_ONLY]
        unknown = sorted(set(self.reward_params) - set(accepted))
        if unknown:
            raise ValueError(f"credit.reward_params: unknown parameter {unknown[0]!r}; SPA's stepwise reward "
                             f"accepts: {', '.join(accepted)}")
        probe = StepBatch(group_id=[0, 0], traj_id=[0, 0], step=[0, 1], reward=[0.0, 1.0], anchor=[0, 1],
                          progress=np.zeros(2))
        try:
            stepwise_reward(probe, **self.reward_params)
        except (TypeError, ValueError) as exc:  # an unknown or bad parameter, named by the message
            raise ValueError(f"credit.reward_params: {exc}") from None

    @property
    def heads(self) -> tuple[str, ...]:
        """Head kinds the run fits, the estimator's own first (its spec's ``head``), then ``progress`` for
        ``reward: spa``. The trainer builds these; it never names an estimator."""
        kinds = [self.spec.head] if self.spec.head else []
        if getattr(self, "reward", "env") == "spa" and "progress" not in kinds:
            kinds.append("progress")
        return tuple(kinds)

    def shape_rewards(self, batch) -> tuple[Any, dict]:
        """``(batch for the estimator, metrics)``: with ``reward: spa`` the rewards become SPA's
        r̃_t = α·ĉ_t + β·g_t from the batch's ``progress``; unchanged, ``{}`` with ``reward: env``."""
        if getattr(self, "reward", "env") == "env":
            return batch, {}
        from steprl.credit.spa import stepwise_reward

        shaped = stepwise_reward(batch, **self.reward_params)
        metrics = {"credit/env_return_mean": float(batch.reward.sum() / max(batch.n_trajectories, 1)),
                   "credit/stepwise_reward_mean": float(shaped.mean()) if len(shaped) else 0.0,
                   "credit/stepwise_return_mean": float(shaped.sum() / max(batch.n_trajectories, 1))}
        return batch.replace(reward=shaped), metrics

    def modify(self, batch, advantages) -> tuple[Any, dict]:
        """``(advantages for the update, the modifier's metrics)``: the estimator's advantages through
        ``modifier`` (unchanged, ``{}`` without one). The trainer calls this; it never names a modifier."""
        if self.modifier is None:
            return advantages, {}
        from steprl.credit.empg import modify

        return modify(self.modifier, batch, advantages, **self.modifier_params)

    @property
    def spec(self):
        """The estimator's :class:`credit.EstimatorSpec` (what it needs and does)."""
        from steprl.credit.registry import spec

        return spec(self.estimator)

    @property
    def text_anchors(self) -> bool:
        """Whether the estimator compares anchor *text* (e.g. GiGPO's similarity mode) rather than state keys."""
        return self.spec.uses_text_anchors(self.params)

    @property
    def effective_drop_threshold(self) -> float | None:
        """``drop_threshold`` if set, else the estimator's own default (None: keep every row)."""
        return self.drop_threshold if self.drop_threshold is not None else self.spec.drop_threshold
