"""Readable reference implementations: each estimator as plain Python loops over rows and groups.

They define the semantics the vectorized estimators must match (tests compare
them on random batches) and serve as the first thing to read. Slow on purpose.
"""

from __future__ import annotations

__all__ = ["gigpo_loop"]


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
