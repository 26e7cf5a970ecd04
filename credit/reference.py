"""Readable reference implementations: each estimator as plain Python loops over rows and groups.

They define the semantics the vectorized estimators must match (tests compare
them on random batches) and serve as the first thing to read. Slow on purpose.
"""

from __future__ import annotations

__all__ = ["grpo_loop", "rloo_loop", "gigpo_loop", "hgpo_loop", "graphgpo_loop", "proxmo_loop", "pgpo_loop", "gagpo_loop", "spa_loop", "gae_loop"]


def _rows_by(keys) -> dict:
    """{key: [row indices]} in first-seen order."""
    out: dict = {}
    for i, key in enumerate(keys):
        out.setdefault(key, []).append(i)
    return out


def _trajectory_rows(traj_id, step) -> dict:
    """{trajectory: its row indices in step order}."""
    rows = _rows_by(traj_id)
    for members in rows.values():
        members.sort(key=lambda i: step[i])
    return rows


def _penalized_returns(traj_id, step, reward, valid, gamma, invalid_penalty):
    """(trajectories, per-row discounted return R_t, per-trajectory return R(τ)) after the invalid-action penalty."""
    penalized = [reward[i] - (0.0 if valid[i] else invalid_penalty) for i in range(len(reward))]
    trajectories = _trajectory_rows(traj_id, step)
    step_return = [0.0] * len(reward)
    episode_return = {}
    for traj, rows in trajectories.items():
        running = 0.0
        for i in reversed(rows):
            running = penalized[i] + gamma * running
            step_return[i] = running
        episode_return[traj] = sum(penalized[i] for i in rows)
    return trajectories, step_return, episode_return


def grpo_loop(group_id, traj_id, step, reward, normalize="mean_std", eps=1e-6) -> list[float]:
    """GRPO (docs/algorithms.md § GRPO): A(τ) = (R(τ) − mean_g R) / (std_g R + ε), statistics over
    the group's trajectories (unbiased std), every row of τ gets A(τ); K = 1: R / (1 + ε)."""
    trajectories = _trajectory_rows(traj_id, step)
    episode_return = {traj: sum(reward[i] for i in rows) for traj, rows in trajectories.items()}
    out = [0.0] * len(reward)
    for members in _rows_by([group_id[rows[0]] for rows in trajectories.values()]).values():
        trajs = [list(trajectories)[m] for m in members]
        returns = [episode_return[t] for t in trajs]
        mean = sum(returns) / len(returns) if len(returns) > 1 else 0.0
        std = (sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)) ** 0.5 if len(returns) > 1 else 1.0
        for traj, value in zip(trajs, returns):
            advantage = value - mean if normalize == "mean" else (value - mean) / (std + eps)
            if len(set(returns)) == 1 and len(returns) > 1:
                advantage = 0.0
            for i in trajectories[traj]:
                out[i] = advantage
    return out


def rloo_loop(group_id, traj_id, step, reward) -> list[float]:
    """RLOO (docs/algorithms.md § RLOO): A(τ_k) = R(τ_k) − mean of the other trajectories' returns; K = 1: R."""
    trajectories = _trajectory_rows(traj_id, step)
    episode_return = {traj: sum(reward[i] for i in rows) for traj, rows in trajectories.items()}
    out = [0.0] * len(reward)
    for members in _rows_by([group_id[rows[0]] for rows in trajectories.values()]).values():
        trajs = [list(trajectories)[m] for m in members]
        for traj in trajs:
            others = [episode_return[t] for t in trajs if t != traj]
            advantage = episode_return[traj] - sum(others) / len(others) if others else episode_return[traj]
            for i in trajectories[traj]:
                out[i] = advantage
    return out


def spa_loop(group_id, traj_id, step, progress, valid, alpha=1.0, beta=0.5, gamma=1.0) -> list[float]:
    """SPA (docs/algorithms.md § SPA): r̃_t = α ĉ_t + β g_t, R̃_t its discounted return, A_t = R̃_t minus the
    mean R̃_t of the group's trajectories that reach step index t; 0 where only one does."""
    trajectories = _trajectory_rows(traj_id, step)
    stepwise_return = [0.0] * len(progress)
    for rows in trajectories.values():
        running = 0.0
        for i in reversed(rows):
            running = alpha * progress[i] + beta * (1.0 if valid[i] else 0.0) + gamma * running
            stepwise_return[i] = running
    out = [0.0] * len(progress)
    for rows in _rows_by(list(zip(group_id, step))).values():
        if len(rows) < 2:
            continue
        mean = sum(stepwise_return[i] for i in rows) / len(rows)
        for i in rows:
            out[i] = stepwise_return[i] - mean
    return out


def gae_loop(traj_id, step, reward, value, gamma=1.0, lam=0.95) -> list[float]:
    """GAE (docs/algorithms.md § PPO with a critic): δ_t = r_t + γ V_{t+1} − V_t (V after the last step = 0),
    Â_t = Σ_l (γλ)^l δ_{t+l}."""
    out = [0.0] * len(reward)
    for rows in _trajectory_rows(traj_id, step).values():
        advantage = 0.0
        for position in reversed(range(len(rows))):
            i = rows[position]
            next_value = value[rows[position + 1]] if position + 1 < len(rows) else 0.0
            advantage = reward[i] + gamma * next_value - value[i] + gamma * lam * advantage
            out[i] = advantage
    return out


def gigpo_loop(group_id, traj_id, step, reward, anchor, valid, gamma=0.95, step_weight=1.0,
               normalize="mean_std", eps=1e-6, invalid_penalty=0.1) -> list[float]:
    """GiGPO the straightforward way (docs/algorithms.md § GiGPO, Eq. 3, 5-8): Python loops over groups and rows.

    Lists in, one advantage per row out, in the rows' order; the same semantics as
    :func:`credit.gigpo.advantages` with exact anchors (no similarity mode).
    """
    n = len(reward)
    penalized = [reward[i] - (0.0 if valid[i] else invalid_penalty) for i in range(n)]

    rows_of_traj: dict = {}
    for i in range(n):
        rows_of_traj.setdefault(traj_id[i], []).append(i)
    episode_return: dict = {}
    step_return = [0.0] * n
    for traj, rows in rows_of_traj.items():
        rows.sort(key=lambda i: step[i])
        total = 0.0
        for i in rows:
            total += penalized[i]
        episode_return[traj] = total
        running = 0.0
        for i in reversed(rows):  # Eq. 5
            running = penalized[i] + gamma * running
            step_return[i] = running

    def normalized(values, singleton_value):
        if len(values) == 1:
            return [singleton_value(values[0])]
        mean = sum(values) / len(values)
        if normalize == "mean":
            return [v - mean for v in values]
        std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
        return [(v - mean) / (std + eps) for v in values]

    rows_of_group: dict = {}
    for i in range(n):
        rows_of_group.setdefault(group_id[i], []).append(i)
    episode_advantage = [0.0] * n
    for rows in rows_of_group.values():  # Eq. 3, statistics over the group's rows
        scores = [episode_return[traj_id[i]] for i in rows]
        if len({traj_id[i] for i in rows}) == 1:  # K = 1: mean 0, std 1
            advantages = [s if normalize == "mean" else s / (1.0 + eps) for s in scores]
        else:
            advantages = normalized(scores, None)
        for i, a in zip(rows, advantages):
            episode_advantage[i] = a

    rows_of_step_group: dict = {}
    for i in range(n):  # Eq. 6
        rows_of_step_group.setdefault((group_id[i], anchor[i]), []).append(i)
    step_advantage = [0.0] * n
    for rows in rows_of_step_group.values():  # Eq. 7, singleton → 0
        for i, a in zip(rows, normalized([step_return[i] for i in rows], lambda _: 0.0)):
            step_advantage[i] = a
    return [episode_advantage[i] + step_weight * step_advantage[i] for i in range(n)]  # Eq. 8


def hgpo_loop(group_id, traj_id, step, reward, anchor, valid, history_length=2, gamma=0.95, mode="mean_std_norm",
              length_weight_alpha=1.0, base_group=False, epsilon=1e-6, invalid_penalty=0.1) -> list[float]:
    """HGPO as verl-agent's ``hgpo_advantage_estimate`` computes it (credit/hgpo.py has the steps), as loops.

    Per group: clusters keyed by (k, the last k anchors of the row's trajectory), k = 1..H+1; each
    cluster of ≥ 2 rows normalizes R_t (population std); a row averages its non-zero values with
    weights (k+1)^α; ``base_group`` adds the episode advantage (over the group's rows, unbiased
    std, one row: mean 0 std 1) at k = 0. A cluster of equal returns gives exactly 0.
    """
    n = len(reward)
    trajectories, step_return, episode_return = _penalized_returns(traj_id, step, reward, valid, gamma,
                                                                   invalid_penalty)

    def normalized(values, unbiased):
        if len(set(values)) == 1:
            return [0.0] * len(values)
        mean = sum(values) / len(values)
        if mode == "mean_norm":
            return [v - mean for v in values]
        std = (sum((v - mean) ** 2 for v in values) / (len(values) - (1 if unbiased else 0))) ** 0.5
        return [(v - mean) / (std + epsilon) for v in values]

    items: dict = {i: [] for i in range(n)}
    for rows in _rows_by(group_id).values():
        if base_group:
            scores = [episode_return[traj_id[i]] for i in rows]
            base = [s if mode == "mean_norm" else s / (1.0 + epsilon) for s in scores] if len(rows) == 1 \
                else normalized(scores, unbiased=True)
            for i, value in zip(rows, base):
                items[i].append((0, value))
        clusters: dict = {}
        for i in rows:
            history = [anchor[j] for j in trajectories[traj_id[i]] if step[j] <= step[i]]
            for k in range(1, min(history_length + 1, step[i] + 1) + 1):
                clusters.setdefault((k, tuple(history[-k:])), []).append(i)
        for (k, _), members in clusters.items():
            if len(members) < 2:
                continue
            for i, value in zip(members, normalized([step_return[j] for j in members], unbiased=False)):
                items[i].append((k, value))
    out = []
    for i in range(n):
        kept = [(k, v) for k, v in items[i] if v != 0]
        if not kept:
            out.append(0.0)
            continue
        w = [(k + 1) ** length_weight_alpha for k, _ in kept]
        out.append(sum(wk * v for wk, (_, v) in zip(w, kept)) / (sum(w) + epsilon))
    return out


def graphgpo_loop(group_id, traj_id, step, reward, anchor, valid, next_anchor, success, gamma=0.1,
                  step_advantage_w=1.0, episode_advantage_w=1.0, mode="mean_std_norm", normalize_distance=False,
                  epsilon=1e-6, invalid_penalty=0.1) -> list[float]:
    """GraphGPO as verl-agent's ``core_graph.py`` computes it (credit/graphgpo.py has the steps), as loops.

    Per group: a graph anchor -> next anchor ("success" after a successful trajectory's last step;
    a row with next_anchor None leads to a dead end of its own); breadth-first distances to
    "success" backwards; unreachable nodes get the largest finite distance + 1; R_t = 10 γ^d(next)
    normalized in GiGPO's step groups (unbiased std, one row: 0) plus the episode advantage over
    the group's rows (one row: mean 0, std 1). Equal values give exactly 0.
    """
    from collections import deque

    n = len(reward)
    mean_only = mode == "mean_norm"
    trajectories = _trajectory_rows(traj_id, step)
    last = {rows[-1] for rows in trajectories.values()}

    def normalized(values, lone):
        if len(values) == 1:
            return [lone(values[0])]
        if len(set(values)) == 1:
            return [0.0] * len(values)
        mean = sum(values) / len(values)
        if mean_only:
            return [v - mean for v in values]
        std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
        return [(v - mean) / (std + epsilon) for v in values]

    out = [0.0] * n
    for rows in _rows_by(group_id).values():
        def target(i):
            if i in last and success[i]:
                return ("success",)
            return ("dead end", i) if next_anchor[i] is None else ("state", next_anchor[i])

        into: dict = {}
        nodes = {("success",)}
        for i in rows:
            source = ("state", anchor[i])
            nodes.update([source, target(i)])
            into.setdefault(target(i), []).append(source)
        distance = {("success",): 0}
        queue = deque([("success",)])
        while queue:
            node = queue.popleft()
            for before in into.get(node, []):
                if before not in distance:
                    distance[before] = distance[node] + 1
                    queue.append(before)
        farthest = max(distance.values())
        d = {node: distance.get(node, farthest + 1) for node in nodes}
        step_return = {}
        for i in rows:
            exponent = d[target(i)] - d[("state", anchor[i])] + 1 if normalize_distance else d[target(i)]
            step_return[i] = 10.0 * gamma ** exponent
        for members in _rows_by([anchor[i] for i in rows]).values():
            members = [rows[m] for m in members]
            for i, value in zip(members, normalized([step_return[i] for i in members], lambda v: 0.0)):
                out[i] += step_advantage_w * value
        if episode_advantage_w:
            penalized = {traj: sum(reward[j] - (0.0 if valid[j] else invalid_penalty) for j in trajectories[traj])
                         for traj in {traj_id[i] for i in rows}}
            scores = [penalized[traj_id[i]] for i in rows]
            lone = (lambda v: v) if mean_only else (lambda v: v / (1.0 + epsilon))
            for i, value in zip(rows, normalized(scores, lone)):
                out[i] += episode_advantage_w * value
    return out


def proxmo_loop(group_id, traj_id, step, reward, anchor, valid, gamma=0.95, step_advantage_w=1.0,
                mode="soft_grouping", enable_psc=True, psc_alpha=4.0, psc_beta=0.866, temperature=0.1,
                max_features=1024, epsilon=1e-6, invalid_penalty=0.1) -> list[float]:
    """ProxMO as ``proxmo/core_proxmo.py`` computes it (credit/proxmo.py has the steps), as loops over rows.

    The TF-IDF vectors come from ``credit.proxmo.tfidf`` (checked against scikit-learn's in the
    tests); the soft baseline is a softmax over every row of the group, row by row.
    """
    import math

    n = len(reward)
    trajectories, step_return, score = _penalized_returns(traj_id, step, reward, valid, gamma, invalid_penalty)

    def normalized(values, with_std, lone):
        if len(values) == 1:
            return [lone(values[0])]
        if len(set(values)) == 1:
            return [0.0] * len(values)
        mean = sum(values) / len(values)
        if not with_std:
            return [v - mean for v in values]
        std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
        return [(v - mean) / (std + epsilon) for v in values]

    def sigmoid(x):
        return 1.0 / (1.0 + math.exp(-x))

    with_std = mode == "mean_std_norm"
    vectors = None
    if mode == "soft_grouping":
        from .proxmo import tfidf

        codes, vocabulary, matrix = tfidf([str(a) for a in anchor], max_features)
        vectors = [list(matrix[c]) for c in codes] if vocabulary else None
    out = [0.0] * n
    for rows in _rows_by(group_id).values():
        scores = [score[traj_id[i]] for i in rows]
        episode = normalized(scores, with_std, (lambda v: v / (1.0 + epsilon)) if with_std else (lambda v: v))
        p = min(1.0, max(0.0, sum(scores) / len(scores))) if len(rows) > 1 else 0.0
        for i, s_i, e in zip(rows, scores, episode):
            if enable_psc:
                weight = (1 + psc_beta * (sigmoid((1 - p) ** psc_alpha) - 0.5)) if s_i > 0.5 else \
                    (1 + psc_beta * (sigmoid(-(p ** psc_alpha)) - 0.5))
                e = e * weight
            out[i] += e
        if mode == "soft_grouping":
            for i in rows:
                if vectors is None:
                    continue
                unit = [x / (math.sqrt(sum(y * y for y in vectors[j])) + 1e-8) for j in (i,) for x in vectors[j]]
                logits = []
                for j in rows:
                    other = vectors[j]
                    norm = math.sqrt(sum(y * y for y in other)) + 1e-8
                    logits.append(sum(a * b / norm for a, b in zip(unit, other)) / temperature)
                top = max(logits)
                weights = [math.exp(l - top) for l in logits]
                baseline = sum(w * step_return[j] for w, j in zip(weights, rows)) / sum(weights)
                out[i] += step_advantage_w * (step_return[i] - baseline)
        else:
            for members in _rows_by([anchor[i] for i in rows]).values():
                members = [rows[m] for m in members]
                for i, v in zip(members, normalized([step_return[i] for i in members], with_std, lambda v: 0.0)):
                    out[i] += step_advantage_w * v
    return out


def _anchor_mean_loop(group_id, anchor, values) -> list[float]:
    cells = _rows_by(list(zip(group_id, anchor)))
    out = [0.0] * len(values)
    for rows in cells.values():
        mean = sum(values[i] for i in rows) / len(rows)
        for i in rows:
            out[i] = mean
    return out


def _normalize_loop(values, keys, normalize, eps, lone):
    out = [0.0] * len(values)
    for rows in _rows_by(keys).values():
        vals = [values[i] for i in rows]
        if len(rows) == 1:
            out[rows[0]] = lone(vals[0])
            continue
        if len(set(vals)) == 1:
            continue
        mean = sum(vals) / len(vals)
        std = (sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) ** 0.5
        for i, v in zip(rows, vals):
            out[i] = v - mean if normalize == "mean" else (v - mean) / (std + eps)
    return out


def gagpo_loop(group_id, traj_id, step, reward, anchor, valid, gamma=0.95, lam=0.95, normalize="mean_std",
               eps=1e-6, invalid_penalty=0.1) -> list[float]:
    """GAGPO (credit/gagpo.py's steps) as loops: V(s) = mean R_t over the group's visits of s, GAE on it,
    then normalization over the group's rows."""
    penalized = [reward[i] - (0.0 if valid[i] else invalid_penalty) for i in range(len(reward))]
    _, step_return, _ = _penalized_returns(traj_id, step, reward, valid, gamma, invalid_penalty)
    value = _anchor_mean_loop(group_id, anchor, step_return)
    advantage = gae_loop(traj_id, step, penalized, value, gamma=gamma, lam=lam)  # GAE on the anchor values
    lone = (lambda v: v) if normalize == "mean" else (lambda v: v / (1.0 + eps))
    return _normalize_loop(advantage, group_id, normalize, eps, lone)


def pgpo_loop(group_id, traj_id, step, reward, anchor, valid, success, gamma=0.95, alpha=2.0, beta=1.0,
              normalize="mean_std", eps=1e-6, invalid_penalty=0.1) -> list[float]:
    """PGPO (credit/pgpo.py's steps) as loops: GiGPO's A^S plus β(1 − p)^α times the step-group-normalized
    potential difference Φ(next) − Φ(s) (the final reward, without the penalty, in place of Φ(next) on the last step)."""
    n = len(reward)
    penalized = [reward[i] - (0.0 if valid[i] else invalid_penalty) for i in range(n)]
    trajectories = _trajectory_rows(traj_id, step)
    step_return = [0.0] * n
    nxt = [None] * n
    for rows in trajectories.values():
        running = 0.0
        for position in reversed(range(len(rows))):
            i = rows[position]
            running = penalized[i] + gamma * running
            step_return[i] = running
            nxt[i] = rows[position + 1] if position + 1 < len(rows) else None
    step_keys = list(zip(group_id, anchor))
    step_adv = _normalize_loop(step_return, step_keys, normalize, eps, lambda v: 0.0)
    potential = _anchor_mean_loop(group_id, anchor, step_return)
    delta = [(reward[i] if nxt[i] is None else potential[nxt[i]]) - potential[i] for i in range(n)]  # Eq. 7: r_final
    shaping = _normalize_loop(delta, step_keys, normalize, eps, lambda v: 0.0)
    rate = {}
    for members in _rows_by(group_id).values():
        outcomes = {traj_id[i]: success[i] for i in members}
        rate[group_id[members[0]]] = sum(outcomes.values()) / len(outcomes)
    return [step_adv[i] + beta * (1.0 - rate[group_id[i]]) ** alpha * shaping[i] for i in range(n)]
