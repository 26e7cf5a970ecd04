"""``CreditConfig``: which estimator a run uses and with what parameters."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["CreditConfig"]


class CreditConfig(BaseModel):
    """Credit assignment of a run (ALGORITHMS.md)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    estimator: str = "gigpo"
    """One of ``credit.available()``: grpo, rloo, loop, gigpo, spa, gae (or a registered one)."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Keyword parameters of the estimator (e.g. gamma, step_weight, normalize for gigpo)."""
    drop_threshold: float | None = None
    """Drop rows with |A| below this from the update; None = 0.01 for loop, off otherwise (LOOP)."""

    @model_validator(mode="after")
    def _known_estimator_and_params(self) -> "CreditConfig":
        from steprl.credit.registry import check_params

        try:
            check_params(self.estimator, self.params)
        except TypeError as exc:  # pydantic reports ValueErrors with the field name
            raise ValueError(str(exc)) from None
        return self

    @property
    def text_anchors(self) -> bool:
        """Whether the estimator compares anchor *text* (GiGPO's similarity mode) rather than state hashes."""
        return bool(self.params.get("similarity", False))

    @property
    def effective_drop_threshold(self) -> float | None:
        if self.drop_threshold is not None:
            return self.drop_threshold
        return 0.01 if self.estimator == "loop" else None
