"""WebShop's reward (Yao et al., 2022, "WebShop: Towards Scalable Real-World Web Interaction
with Grounded Language Agents", §3.1), computed when the agent clicks ``Buy Now``:

    r = r_type · (|U_att ∩ Y_att| + |U_opt ∩ Y_opt| + 1[y_price ≤ u_price]) / (|U_att| + |U_opt| + 1)

U is the goal (attributes U_att, options U_opt, price bound u_price); Y is the
bought product (its attributes Y_att, the options selected at purchase Y_opt,
its price y_price). An option counts when the selected value of that option
type equals the goal's; an unselected option never counts.

Type match ``r_type`` (WebShop scores it from query, category and title-noun
overlap; ours is the same idea with our catalog's explicit types):

* 1.0 — the bought product has the goal's product type;
* 0.5 — a different type of the same category (e.g. shampoo for deodorant, both "beauty");
* 0.1 — another category, but the product's title shares a word with the goal's
  type name (e.g. a "hair dryer" for a "hair extension");
* 0.0 — otherwise.

``success`` is ``r == 1``: right type, every attribute, every option, within budget.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from steprl.envs.web.webshop.catalog import Goal, Product

__all__ = ["RewardDetail", "compute_reward", "type_match"]

_WORD = re.compile(r"[a-z0-9]+")


def type_match(goal: Goal, product: Product) -> float:
    """``r_type`` ∈ {1, 0.5, 0.1, 0} (rules in the module docstring)."""
    if product.type == goal.type:
        return 1.0
    if product.category == goal.category:
        return 0.5
    goal_words = set(_WORD.findall(goal.type.lower()))
    title_words = set(_WORD.findall(product.title.lower()))
    return 0.1 if goal_words & title_words else 0.0


@dataclass(frozen=True)
class RewardDetail:
    """The parts of the reward, as ``info["reward_detail"]`` gives them (via :meth:`as_dict`)."""

    reward: float
    r_type: float
    matched_attributes: tuple[str, ...]
    missing_attributes: tuple[str, ...]
    matched_options: tuple[str, ...]  #: "type: value" of the goal options chosen correctly
    missing_options: tuple[str, ...]
    price_ok: bool
    bought_asin: str
    bought_price: float

    def as_dict(self) -> dict:
        """A JSON-friendly dict."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out


def compute_reward(goal: Goal, product: Product, selected: dict[str, str]) -> RewardDetail:
    """WebShop's reward of buying ``product`` with options ``selected`` (option type → value) for ``goal``."""
    r_type = type_match(goal, product)
    matched_att = tuple(a for a in goal.attributes if a in product.attributes)
    missing_att = tuple(a for a in goal.attributes if a not in product.attributes)
    matched_opt = tuple(f"{k}: {v}" for k, v in goal.options.items() if selected.get(k) == v)
    missing_opt = tuple(f"{k}: {v}" for k, v in goal.options.items() if selected.get(k) != v)
    price_ok = product.price <= goal.price_upper
    hits = len(matched_att) + len(matched_opt) + int(price_ok)
    total = len(goal.attributes) + len(goal.options) + 1
    reward = r_type * hits / total
    return RewardDetail(float(reward), r_type, matched_att, missing_att, matched_opt, missing_opt, price_ok,
                        product.asin, product.price)
