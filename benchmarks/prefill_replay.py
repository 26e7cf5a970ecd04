"""HFEngine on a training run's own prompts: each distinct prompt prefilled once, against every row.

Replays the prompts of a saved iteration (``runs/<run>/episodes/iter_*.jsonl``,
written every ``run.save_episodes_every`` iterations) turn by turn, as the
lockstep rollout sent them: all episodes' step-t prompts in one ``generate``
call. A group's K episodes share their first prompt, and a trained policy often
takes the same actions, so later turns repeat prompts too. Times both engine
settings on the same calls, interleaved, and prints the share of rows and
prompt tokens that were repeats.

    python benchmarks/prefill_replay.py runs/quickstart        # after `make quickstart` (~2 min)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def turns_of(path: Path) -> list[list[list[int]]]:
    """The prompts of each turn (step index), in episode order."""
    by_step: dict[int, list[list[int]]] = defaultdict(list)
    with path.open() as f:
        for line in f:
            for step in json.loads(line)["steps"]:
                by_step[step["step"]].append(step["prompt_ids"])
    return [by_step[t] for t in sorted(by_step)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run directory with episodes/ and base_model/ (or --model)")
    parser.add_argument("--episodes", type=Path, help="an episodes file (default: the run's last one)")
    parser.add_argument("--model", type=Path, help="model folder (default: the run's base_model)")
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import numpy as np
    import torch

    from steprl.agent.engines import HFEngine, Sampling

    torch.set_num_threads(args.threads)
    episodes = args.episodes or max((args.run / "episodes").glob("iter_*.jsonl"))
    model = args.model or args.run / "base_model"
    turns = turns_of(episodes)
    rows = sum(len(t) for t in turns)
    unique = [list({tuple(p): None for p in t}) for t in turns]
    tokens = sum(len(p) for t in turns for p in t)
    unique_tokens = sum(len(p) for t in unique for p in t)
    engine = HFEngine.from_pretrained(str(model), dtype="float32", device="cpu")
    sampling = Sampling(temperature=1.0, max_new_tokens=args.max_new_tokens, seed=0)
    for prompts in turns[:2]:  # warm-up
        engine.generate(prompts, sampling=sampling)
    times = {True: [], False: []}
    for _ in range(args.repeats):
        for unique_only in (True, False):
            engine.prefill_unique = unique_only
            start = time.perf_counter()
            for prompts in turns:
                engine.generate(prompts, sampling=sampling)
            times[unique_only].append(time.perf_counter() - start)
    every, once = float(np.median(times[False])), float(np.median(times[True]))
    print(f"# {episodes}: {len(turns)} turns, {rows} rows, {tokens} prompt tokens; model {model}; "
          f"{args.threads} thread(s), load average {os.getloadavg()[0]:.2f}; median of {args.repeats} interleaved")
    print(f"# repeated prompts: {1 - sum(map(len, unique)) / rows:.0%} of rows, "
          f"{1 - unique_tokens / tokens:.0%} of prompt tokens")
    print()
    print("| HFEngine | engine time (s) | speed-up |")
    print("|---|---:|---:|")
    print(f"| every row prefilled | {every:.2f} | 1.00× |")
    print(f"| each distinct prompt prefilled once | {once:.2f} | {every / once:.2f}× |")


if __name__ == "__main__":
    main()
