"""GraphGPO (ICML 2026, arXiv 2605.26684): step returns from the distance to success on the group's state graph.

docs/algorithms.md § Step-level methods after GiGPO. The official code is verl-agent's
``recipe/GraphGPO/core_graph.py`` (``ComplexGraph``, ``compute_graph_path_returns``,
``compute_graphgpo_outcome_advantage``); this module follows it and matches its per-row
outputs for exact anchors (``credit/reference.py: graphgpo_loop`` is that algorithm as
plain loops; the tests compare). Defaults from its config (``graphgpo_trainer.yaml``):
γ = 0.1, ``step_advantage_w = episode_advantage_w = 1``, ``mode="mean_std_norm"``,
``normalize_distance=False``. The paper's names: ω for our γ (the distance discount),
β^G and β^E for the two weights. Of the paper's equation numbers only Eq. 4 (the step
reward) was confirmed from what we could read; the other steps name the paper's objects.
Per group of K trajectories of one task:

1. The state graph: an edge anchor → next anchor for every step row; the last step of a
   successful trajectory leads to the group's ``success`` node instead (the official
   rollout writes ``"success"`` as that step's next observation). (The paper's aggregated
   state-transition graph, edges (s, a, s', c) with cost c = 1 in its experiments.)
2. d(s): the fewest edges from s to ``success`` (a search backwards from it, unit costs).
   A node that cannot reach it gets the group's largest finite distance + 1 (so in a group
   with no success every node has d = 1). (The paper: d(s) = min over edges of c + d(s'),
   d(success) = 0, unreachable d_max + 1, by Dijkstra.)
3. The step return of a row: R_t = 10 · γ^{d(next)} (``normalize_distance=True``:
   10 · γ^{d(next) − d(anchor) + 1}). The env reward does not enter it. (Eq. 4, which the
   code departs from; see below.)
4. Step advantage: R_t normalized within GiGPO's step group (same anchor in the group;
   unbiased std; a group of one row gives 0). (The paper's A^G over G^G(s), the edges out
   of s; one edge gives 0.)
5. Episode advantage: GiGPO's, as the official ``episode_norm_reward``: R(τ) normalized over
   the group's step rows (unbiased std; a group of one row: mean 0, std 1), with the
   invalid-action penalty in R(τ) (steprl's GiGPO reading, ``credit.gigpo``).
6. A_t = ``step_advantage_w`` · A^step + ``episode_advantage_w`` · A^ep (the paper's
   β^G A^G + β^E A^E).

Where the paper's equations differ from the official code (we follow the code):
- Eq. 4 gives the step reward r_succ · ω^{d(s') + c(s, a)}, i.e. 10 · ω^{d(next) + 1} with
  unit costs; the code uses 10 · ω^{d(next)}, one factor ω fewer, so every step return is
  1/ω times the paper's (10 times at ω = 0.1). Under ``mode="mean_std_norm"`` the factor
  cancels (up to ε); under ``"mean_norm"`` our A^step is 1/ω times the paper's.
- The paper's A^E is GRPO's trajectory-level advantage; the code's takes its statistics
  over the group's step rows (longer trajectories weigh more), as GiGPO's code does.
- ``normalize_distance`` is the code's option; the paper's equations have no such variant.
- A group with no success: the paper's d_max is undefined there; the code sets d = 1
  everywhere. Either way every step return is equal and A^step = 0.

Deliberate differences from the official code: a step group (or group) whose values are
all equal gets exactly 0 (the official float32 mean can leave ~1e-8 noise that its
division by (0 + ε) scales up); float64 throughout; the similarity merge of
near-identical states (``enable_similarity``) is not implemented (exact anchors only). A
row whose env crashed has no next state: its next node is a dead end of its own.
"""

from __future__ import annotations

import numpy as np

from .batch import (
    StepBatch,
    check_finite,
    check_positive,
    check_unit_interval,
    factorize_pairs,
    hash_keys,
    normalize_in_groups,
)
from .gigpo import episode_advantage_over_rows, penalized_reward
from .registry import register

MODES = {"mean_std_norm": "mean_std", "mean_norm": "mean"}
SCALE = 10.0  # the official code's step-return scale


def diagnostics(batch: StepBatch, advantages, **params) -> dict[str, float]:
    """GraphGPO's own: ``credit/graph_reachable_share`` (rows whose next state reaches success) and
    ``credit/graph_distance_mean`` (mean d(next) over those rows)."""
    distance, reachable = next_state_distances(batch)
    return {"credit/graph_reachable_share": float(reachable.mean()) if reachable.size else 0.0,
            "credit/graph_distance_mean": float(distance[reachable].mean()) if reachable.any() else 0.0}


def details(batch: StepBatch, *, gamma: float = 0.1, step_advantage_w: float = 1.0, episode_advantage_w: float = 1.0,
            mode: str = "mean_std_norm", normalize_distance: bool = False, epsilon: float = 1e-6,
            invalid_penalty: float = 0.1) -> dict[str, np.ndarray]:
    """GraphGPO's per-step quantities (``credit.details("graphgpo", ...)``), row order;
    A = step_advantage_w·A_S + episode_advantage_w·A_E.

        d_next    d(next state): fewest edges from the state the step led to to success
                  (the group's largest finite distance + 1 where it cannot reach it)
        reaches   1 where the next state reaches success, else 0
        d         d(anchor), the distance of the state the step acted in
        R_step    the step return 10·γ^{d_next} (``normalize_distance``: 10·γ^{d_next − d + 1})
        A_S       R_step normalized in GiGPO's step group (0 when alone), before its weight
        A_E       the episode advantage, before its weight (0 when ``episode_advantage_w=0``)
    """
    parts: dict = {}
    _compute(batch, gamma, step_advantage_w, episode_advantage_w, mode, normalize_distance, epsilon, invalid_penalty,
             parts)
    return parts


@register("graphgpo", needs=("next_anchor", "success"), diagnostics=diagnostics, details=details)
def advantages(batch: StepBatch, *, gamma: float = 0.1, step_advantage_w: float = 1.0,
               episode_advantage_w: float = 1.0, mode: str = "mean_std_norm", normalize_distance: bool = False,
               epsilon: float = 1e-6, invalid_penalty: float = 0.1) -> np.ndarray:
    """GraphGPO advantage of each step row (module docstring, steps 1-6).

    Args:
        gamma: γ of the step return 10·γ^d, the paper's ω (official config: 0.1 ALFWorld, 0.2 WebShop).
        step_advantage_w: weight of the graph step advantage.
        episode_advantage_w: weight of the episode advantage (0 drops it).
        mode: "mean_std_norm" or "mean_norm" (both levels).
        normalize_distance: use d(next) − d(anchor) + 1 instead of d(next).
        epsilon: ε of the std division.
        invalid_penalty: λ off r_t of invalid actions, in the episode return.
    """
    return _compute(batch, gamma, step_advantage_w, episode_advantage_w, mode, normalize_distance, epsilon,
                    invalid_penalty)


def _compute(batch: StepBatch, gamma: float, step_advantage_w: float, episode_advantage_w: float, mode: str,
             normalize_distance: bool, epsilon: float, invalid_penalty: float, parts: dict | None = None) -> np.ndarray:
    """The advantages; `parts` (a dict) receives the per-step quantities of :func:`details` too."""
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is not one of {sorted(MODES)}")
    check_unit_interval("gamma", gamma)
    check_positive("epsilon", epsilon)
    for name, value in (("step_advantage_w", step_advantage_w), ("episode_advantage_w", episode_advantage_w),
                        ("invalid_penalty", invalid_penalty)):
        check_finite(name, value)
    n = len(batch)
    if n == 0:
        if parts is not None:
            parts.update({key: np.zeros(0) for key in ("d_next", "reaches", "d", "R_step", "A_S", "A_E")})
        return np.zeros(0)
    normalize = MODES[mode]
    next_distance, reaches = next_state_distances(batch)
    exponent = next_distance - anchor_distances(batch) + 1 if normalize_distance else next_distance
    step_return = batch.canonical(SCALE * np.power(float(gamma), exponent))
    code, n_codes = factorize_pairs(batch.canonical(batch.group_code), batch.n_groups,
                                    batch.canonical(_anchor_keys(batch)))  # GiGPO's step groups
    step_advantage = normalize_in_groups(step_return, code, n_codes, normalize, epsilon, singleton_rule="zero")
    advantage = step_advantage_w * step_advantage
    episode_advantage = None
    if episode_advantage_w != 0:
        reward = batch.canonical(penalized_reward(batch, invalid_penalty))
        episode_advantage = episode_advantage_over_rows(batch, reward, normalize, epsilon)
        advantage = advantage + episode_advantage_w * episode_advantage
    if parts is not None:
        parts.update(d_next=next_distance, reaches=reaches, d=anchor_distances(batch),
                     R_step=batch.to_rows(step_return), A_S=batch.to_rows(step_advantage),
                     A_E=np.zeros(n) if episode_advantage is None else batch.to_rows(episode_advantage))
    return batch.to_rows(advantage)


def next_state_distances(batch: StepBatch) -> tuple[np.ndarray, np.ndarray]:
    """(d(next state), whether it reaches success) per row, row order (module docstring, steps 1-2)."""
    graph = _graph(batch)
    distance = graph["distance"][graph["next_node"]]
    return distance, graph["reached"][graph["next_node"]]


def anchor_distances(batch: StepBatch) -> np.ndarray:
    """d(anchor) per row, row order."""
    graph = _graph(batch)
    return graph["distance"][graph["node"]]


def _anchor_keys(batch: StepBatch) -> np.ndarray:
    if batch.anchor is not None and isinstance(batch.anchor, np.ndarray):
        return batch.anchor
    return hash_keys(batch.anchor, "anchor")


def _graph(batch: StepBatch) -> dict:
    """Nodes, reverse-search distances and reachability of every group's state graph (cached on the batch)."""
    cached = batch._cache.get("graphgpo")
    if cached is not None:
        return cached
    if batch.next_anchor is None or batch.success is None:
        raise ValueError("graphgpo needs each row's next state and its episode's outcome: build the batch with "
                         "StepBatch(..., next_anchor=..., success=...) (StepBatch.from_rows does)")
    if not isinstance(batch.anchor, np.ndarray):
        raise ValueError("graphgpo compares anchors with next anchors as integer state keys: give integer anchors "
                         "(StepBatch.from_rows without text_anchors)")
    n = len(batch)
    anchor = batch.anchor
    next_anchor = np.array([-1 if key is None else key for key in batch.next_anchor], dtype=np.int64) \
        if not isinstance(batch.next_anchor, np.ndarray) else batch.next_anchor.copy()
    unknown = next_anchor < 0
    next_anchor[unknown] = -2 - np.flatnonzero(unknown)  # a dead end of its own per crashed row
    last = batch.step == batch.traj_length[batch.traj_code] - 1
    to_success = last & batch.success
    # node ids: (group, key) over anchors and next keys; the success node of group g is n_keys + g
    groups = np.concatenate([batch.group_code, batch.group_code])
    ids, n_keys = factorize_pairs(groups, batch.n_groups, np.concatenate([anchor, next_anchor]))
    node, next_node = ids[:n], ids[n:].copy()
    next_node[to_success] = n_keys + batch.group_code[to_success]
    n_nodes = n_keys + batch.n_groups
    # backwards search from every success node at once (groups share no node), one level per pass
    distance = np.full(n_nodes, np.inf)
    distance[n_keys + np.unique(batch.group_code[to_success])] = 0.0
    frontier = distance == 0
    level = 0
    while frontier.any():
        level += 1
        reach = np.zeros(n_nodes, dtype=bool)
        reach[node[frontier[next_node]]] = True
        reach &= np.isinf(distance)
        distance[reach] = level
        frontier = reach
    reached = np.isfinite(distance)
    # unreachable: the group's largest finite distance + 1 (the success node's 0 counts)
    node_group = np.zeros(n_nodes, dtype=np.int64)
    node_group[node] = batch.group_code
    node_group[next_node] = batch.group_code
    node_group[n_keys:] = np.arange(batch.n_groups)
    farthest = np.zeros(batch.n_groups)
    np.maximum.at(farthest, node_group[reached], distance[reached])
    distance = np.where(reached, distance, farthest[node_group] + 1)
    graph = {"node": node, "next_node": next_node, "distance": distance, "reached": reached}
    batch._cache["graphgpo"] = graph
    return graph
