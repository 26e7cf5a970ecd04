"""WebShop-like shop, text mode: catalog, tasks, search, reward, pages, anchors, expert and random bars."""

import dataclasses

import numpy as np
import pytest

from steprl import envs
from steprl.envs.web.webshop.catalog import PRODUCT_TYPES, Goal, Product, generate_catalog, make_goal
from steprl.envs.web.webshop.html_text import html_to_text
from steprl.envs.web.webshop.pages import get_shop, parse_action
from steprl.envs.web.webshop.reward import compute_reward, type_match
from steprl.envs.web.webshop.text_env import SEARCH_SUGGESTIONS, WebShopTextEnv
from steprl.evaluation import ExpertPolicy, RandomPolicy, run_policy

TEXT_ID = "web/webshop-text-v0"


# -- catalog and tasks --------------------------------------------------------------------
def test_catalog_is_large_varied_and_deterministic():
    catalog = generate_catalog()
    assert len(catalog) >= 1000
    assert len({p.type for p in catalog.products}) >= 10
    assert len({p.category for p in catalog.products}) == 5
    assert len(catalog.by_asin) == len(catalog)  # ASINs are unique
    for p in catalog.products[:200]:
        assert 2 <= len(p.attributes) <= 4 and p.options and all(len(v) >= 2 for v in p.options.values())
        assert p.price > 0 and p.title and p.description and p.features
        values = [v for vs in p.options.values() for v in vs]
        assert len(values) == len(set(values))  # one button per value on the item page
    again = generate_catalog.__wrapped__(1200, 0)
    assert [dataclasses.astuple(p) for p in again.products] == [dataclasses.astuple(p) for p in catalog.products]
    other = generate_catalog.__wrapped__(1200, 1)
    assert other.products[0].asin != catalog.products[0].asin


def test_goals_follow_webshop_form_and_the_target_satisfies_them():
    catalog = generate_catalog()
    for seed in range(11_000, 11_200):
        goal = make_goal(catalog, seed)
        target = catalog.by_asin[goal.target_asin]
        assert 1 <= len(goal.attributes) <= 3 and set(goal.attributes) <= set(target.attributes)
        assert goal.options and all(v in target.options[k] for k, v in goal.options.items())
        assert goal.price_upper >= target.price
        assert goal.instruction.endswith(f"price lower than {goal.price_upper:.2f} dollars")
        assert goal.type in goal.instruction and all(a in goal.instruction for a in goal.attributes)
        assert compute_reward(goal, target, goal.options).reward == 1.0
    assert make_goal(catalog, 11_003) == make_goal(catalog, 11_003)
    assert len({make_goal(catalog, s).instruction for s in range(200)}) >= 195  # seeds give different tasks


def test_splits_are_disjoint_and_sized():
    ranges = WebShopTextEnv.split_ranges
    assert (len(ranges["train"]), len(ranges["valid"]), len(ranges["test"])) == (10_000, 1_000, 1_000)
    seen = set()
    for r in ranges.values():
        assert not seen & set(r)
        seen |= set(r)


# -- search ----------------------------------------------------------------------------------
def test_search_is_fts5_bm25_not_substring():
    shop = get_shop()
    hits = shop.results("shampoo")
    assert len(hits) == 50 and all(shop.catalog.by_asin[a].type == "shampoo" for a in hits)
    assert shop.results("shamp") == []  # a word prefix/substring does not match
    assert shop.results("!!! ???") == [] and shop.results("xyzzy") == []
    # Ranking, not filtering: a word that is in no product does not empty the result list.
    assert shop.results("shampoo xyzzy") == hits
    # BM25: the products with more (rare) query words come first.
    ranked = shop.results("sulfate free for dry hair shampoo")
    top = shop.catalog.by_asin[ranked[0]]
    assert top.type == "shampoo" and {"sulfate free", "for dry hair"} <= set(top.attributes)
    row = shop.engine._db.execute("SELECT count(*) FROM products WHERE products MATCH 'shampoo'").fetchone()
    assert row[0] == sum(p.type == "shampoo" for p in shop.catalog.products)


# -- reward (Yao et al., 2022) --------------------------------------------------------------
def _product(**kw) -> Product:
    base = dict(asin="B0TEST0001", title="Acme Silky Hair Extension", type="hair extension", category="beauty",
                attributes=("natural looking", "clip in", "human hair"),
                options={"color": ("black", "brown"), "length": ("18 inch", "20 inch")}, price=30.99, rating=4.0,
                description="", features=(), reviews=())
    return Product(**{**base, **kw})


GOAL = Goal("i need a hair extension ...", "hair extension", "beauty", ("natural looking", "clip in"),
            {"color": "black", "length": "18 inch"}, 40.0, "B0TEST0001")


def test_reward_perfect_purchase():
    detail = compute_reward(GOAL, _product(), {"color": "black", "length": "18 inch"})
    assert detail.reward == 1.0 and detail.r_type == 1.0 and detail.price_ok


def test_reward_missing_option():
    # 2 attributes + 1 of 2 options + price = 4 of 5
    detail = compute_reward(GOAL, _product(), {"color": "black"})
    assert detail.reward == pytest.approx(4 / 5) and detail.missing_options == ("length: 18 inch",)
    # a wrong value counts like a missing one
    assert compute_reward(GOAL, _product(), {"color": "brown", "length": "18 inch"}).reward == pytest.approx(4 / 5)


def test_reward_price_over_the_bound():
    detail = compute_reward(GOAL, _product(price=45.99), {"color": "black", "length": "18 inch"})
    assert detail.reward == pytest.approx(4 / 5) and not detail.price_ok


def test_reward_partial_attributes():
    goal = dataclasses.replace(GOAL, attributes=("natural looking", "heat resistant", "easy to apply"), options={})
    detail = compute_reward(goal, _product(), {})
    assert detail.reward == pytest.approx((1 + 0 + 1) / (3 + 0 + 1))  # 1 of 3 attributes, price ok
    assert detail.matched_attributes == ("natural looking",)


def test_reward_type_mismatch_levels():
    selected = {"color": "black", "length": "18 inch"}
    same_category = _product(type="shampoo", title="Acme Herbal Shampoo")  # beauty too
    assert type_match(GOAL, same_category) == 0.5
    assert compute_reward(GOAL, same_category, selected).reward == pytest.approx(0.5)
    title_word = _product(type="hair dryer", category="electronics", title="Acme Ionic Hair Dryer")
    assert type_match(GOAL, title_word) == 0.1
    assert compute_reward(GOAL, title_word, {"color": "black"}).reward == pytest.approx(0.1 * 4 / 5)
    unrelated = _product(type="coffee beans", category="grocery", title="Acme Dark Roast Coffee Beans")
    assert compute_reward(GOAL, unrelated, selected).reward == 0.0


# -- pages, actions, anchors -------------------------------------------------------------
def test_parse_action():
    assert parse_action("search[ Long  Hair ]") == ("search", "Long Hair")
    assert parse_action("Click[Buy Now]") == ("click", "Buy Now")
    assert parse_action("click Buy Now") is None and parse_action("buy[x]") is None


def test_html_to_text_brackets_clickables_only():
    html = ('<html><head><title>x</title></head><body><div><a class="clickable" href="/">Back to  Search</a>'
            '<span>Page 1</span></div><div>a &amp; b</div><button>Search</button></body></html>')
    assert html_to_text(html) == "[Back to Search] Page 1\na & b\nSearch"


def _goal_env():
    env = envs.make(TEXT_ID, split="test", num_tasks=5)
    obs, info = env.reset(seed=0, options={"task": 0})
    return env, obs, info


def test_walk_through_every_page_kind_with_anchors():
    env, obs, info = _goal_env()
    assert obs.startswith("WebShop") and info["anchor"] == "/" and info["page"] == "search"
    assert info["admissible_actions"] == list(SEARCH_SUGGESTIONS) and len(SEARCH_SUGGESTIONS) == len(PRODUCT_TYPES)
    obs, r, term, trunc, info = env.step("search[Sulfate  FREE shampoo]")
    assert info["anchor"] == "/results?q=sulfate free shampoo&page=1" and info["valid_action"]
    assert obs.splitlines()[:3] == ["[Back to Search]", "Page 1 (Total results: 50)", "[Next >]"]
    assert info["admissible_actions"][:2] == ["click[Back to Search]", "click[Next >]"]
    assert len(info["admissible_actions"]) == 12
    obs, *_, info = env.step("click[Next >]")
    assert info["anchor"] == "/results?q=sulfate free shampoo&page=2" and "[< Prev]" in obs
    asin = info["admissible_actions"][-1][6:-1]
    obs, *_, info = env.step(f"click[{asin.lower()}]")  # elements are matched case-insensitively
    assert info["anchor"] == f"/item/{asin}" and "[Buy Now]" in obs
    product = env.unwrapped.shop.catalog.by_asin[asin]
    first_type, values = next(iter(product.options.items()))
    obs, *_, info = env.step(f"click[{values[1]}]")
    assert info["anchor"] == f"/item/{asin}?{first_type}={values[1]}" and f"(selected: {values[1]})" in obs
    obs, *_, info = env.step("click[Features]")
    assert info["anchor"] == f"/item/{asin}/features?{first_type}={values[1]}" and product.features[0] in obs
    obs, *_, info = env.step("click[< Prev]")
    assert info["anchor"] == f"/item/{asin}?{first_type}={values[1]}"
    obs, *_, info = env.step("click[< Prev]")
    assert info["anchor"] == "/results?q=sulfate free shampoo&page=2"
    obs, *_, info = env.step("click[Back to Search]")
    assert info["anchor"] == "/"


def test_invalid_actions_keep_the_page_and_the_anchor():
    env, obs, info = _goal_env()
    obs, r, term, trunc, info = env.step("search[shampoo]")
    page, anchor = obs, info["anchor"]
    for bad in ("click[Buy Now]", "search[more shampoo]", "click[B0NOTTHERE]", "buy shampoo", "click[]"):
        obs, r, term, trunc, info = env.step(bad)
        assert info["valid_action"] is False and r == 0.0 and not term and not trunc
        assert obs.startswith("That is not a valid action.") and obs.endswith(page) and info["anchor"] == anchor
    env.step("click[Back to Search]")
    for bad in ("search[]", "search[   ]", "search[" + "x" * 300 + "]", "click[Next >]"):
        assert env.step(bad)[4]["valid_action"] is False
    assert env.step("search[!!!]")[4]["anchor"] == "/results?q=!!!&page=1"  # valid search, no results


def test_buy_ends_the_episode_with_reward_detail():
    env, obs, info = _goal_env()
    goal = env.unwrapped.goal
    env.step(f"search[{goal.query}]")
    obs, r, term, trunc, info = env.step(f"click[{goal.target_asin}]")
    obs, r, term, trunc, info = env.step("click[Buy Now]")  # no option selected
    n_opt = len(goal.options)
    assert term and not trunc and info["success"] is False
    assert r == pytest.approx((len(goal.attributes) + 1) / (len(goal.attributes) + n_opt + 1))
    assert info["reward_detail"]["r_type"] == 1.0 and info["reward_detail"]["missing_options"]
    assert obs.startswith("Thank you for shopping with us!") and info["anchor"] == f"/done/{goal.target_asin}"


def test_time_limit_is_15_steps():
    env, obs, info = _goal_env()
    for t in range(15):
        obs, r, term, trunc, info = env.step("search[shampoo]" if t % 2 == 0 else "click[Back to Search]")
        if trunc:
            break
    assert t == 14 and trunc and not term and info["success"] is False


def test_same_seed_same_episode():
    def play():
        env = envs.make(TEXT_ID, split="valid", num_tasks=3)
        rng = np.random.default_rng(5)
        obs, info = env.reset(seed=3)
        seen = [obs, info["task_id"]]
        for _ in range(15):
            actions = info["admissible_actions"]
            obs, r, term, trunc, info = env.step(actions[int(rng.integers(len(actions)))])
            seen += [obs, r, info["anchor"]]
            if term or trunc:
                break
        return seen

    assert play() == play()


def test_expert_action_is_admissible_or_a_search():
    env = envs.make(TEXT_ID, split="test", num_tasks=20)
    for task in range(20):
        obs, info = env.reset(options={"task": task})
        while True:
            action = info["expert_action"]
            assert action.startswith("search[") or action in info["admissible_actions"]
            obs, r, term, trunc, info = env.step(action)
            if term or trunc:
                break


@pytest.mark.slow
def test_expert_and_random_bars_on_100_test_tasks():
    expert = run_policy(TEXT_ID, ExpertPolicy(), split="test", num_tasks=100, progress=False)
    random = run_policy(TEXT_ID, RandomPolicy(seed=0), split="test", num_tasks=100, progress=False)
    print("\n" + expert.line() + "\n" + random.line())
    assert expert.mean_return >= 0.9 and expert.success_rate >= 0.8
    assert random.mean_return <= 0.3 and random.success_rate <= 0.1
    assert expert.mean_return - random.mean_return >= 0.6


def test_admissible_actions_are_the_bracketed_elements_and_urls_round_trip():
    """On random walks: the page's bracketed elements are exactly the admissible clicks, and URL → state is exact."""
    import re

    env = envs.make(TEXT_ID, split="train", num_tasks=30)
    shop = env.unwrapped.shop
    rng = np.random.default_rng(1)
    kinds = set()
    for task in range(30):
        obs, info = env.reset(options={"task": task})
        for _ in range(15):
            state = env.unwrapped.state
            kinds.add(state.kind)
            assert shop.state_from_url(state.url()) == state
            assert info["anchor"] == state.anchor()
            if state.kind not in ("search", "done"):
                assert [f"click[{x}]" for x in re.findall(r"\[([^\]]+)\]", obs)] == info["admissible_actions"]
            actions = info["admissible_actions"]
            obs, r, term, trunc, info = env.step(actions[int(rng.integers(len(actions)))])
            if term or trunc:
                kinds.add(env.unwrapped.state.kind)
                break
    assert kinds == {"search", "results", "item", "sub", "done"}
