"""The shop's expert: the action ``info["expert_action"]`` gives at every step.

It searches the goal's query (the goal's attributes + product type), walks the
result pages to the best product among the results — the one whose best
purchase earns the highest reward, usually a product that satisfies the goal
fully, earliest-ranked on ties — opens it, selects the goal's options and buys.
From any other state (a wrong query, another item, a sub-page) it navigates
back on that path, so it also serves as a teacher after the agent's mistakes.
"""

from __future__ import annotations

from steprl.envs.web.webshop.catalog import Goal, Product
from steprl.envs.web.webshop.pages import RESULTS_PER_PAGE, PageState, Shop
from steprl.envs.web.webshop.reward import compute_reward

__all__ = ["expert_action", "best_purchase", "best_product"]


def best_purchase(goal: Goal, product: Product) -> tuple[float, dict[str, str]]:
    """The highest reward buying ``product`` can earn for ``goal``, and the options that earn it."""
    options = {ot: v for ot, v in goal.options.items() if v in product.options.get(ot, ())}
    return compute_reward(goal, product, options).reward, options


def best_product(shop: Shop, goal: Goal) -> str | None:
    """The ASIN the expert aims for: best achievable reward among the goal query's results, best-ranked on ties."""
    best, best_reward = None, -1.0
    for asin in shop.results(goal.query):
        reward, _ = best_purchase(goal, shop.catalog.by_asin[asin])
        if reward > best_reward + 1e-12:
            best, best_reward = asin, reward
    return best


def expert_action(shop: Shop, goal: Goal, state: PageState, target: str | None) -> str | None:
    """The expert's next action in ``state`` (None once the order is placed). ``target`` = :func:`best_product`."""
    if state.kind == "search":
        return f"search[{goal.query}]"
    if state.kind == "results":
        if state.query != goal.query or target is None:
            return "click[Back to Search]"
        on_page, _ = shop.page_results(state)
        if target in on_page:
            return f"click[{target}]"
        target_page = shop.results(goal.query).index(target) // RESULTS_PER_PAGE + 1
        return "click[Next >]" if target_page > state.page else "click[< Prev]"
    if state.kind == "item":
        product = shop.catalog.by_asin[state.asin]
        reward, options = best_purchase(goal, product)
        if state.asin != target and reward < 1.0:
            return "click[< Prev]"
        selected = dict(state.options)
        for otype, value in options.items():
            if selected.get(otype) != value:
                return f"click[{value}]"
        return "click[Buy Now]"
    if state.kind == "sub":
        return "click[< Prev]"
    return None
