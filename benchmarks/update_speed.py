"""Policy update: the LM head on the response columns only, against full logits.

The trainer's micro-batches left-pad prompts and right-pad responses, so every
response starts at one column and ``Policy.token_logprobs`` asks the model for
the last ``R + 1`` columns of logits only (``logits_to_keep``). This times one
``PolicyTrainer.update`` (old log-probs recomputed, 1 epoch, minibatches of 64)
with that on and off, in one run, interleaved, on rows shaped like the
quickstart's rollouts (prompts ~214 ± 40 tokens, short responses), and measures
how far each mode's resident memory rises during the update, in a child process
of its own (Linux: /proc/self/status, the peak reset through clear_refs).

Two from-scratch Qwen2 models (random weights, nothing downloaded): the
quickstart's tiny one (vocab 1,024) and one with SmolLM2's and Qwen's kind of
vocabulary size (49,152), where the logits are most of the activations.

Torch runs one thread (``--threads``): on a busy 2-core machine two threads
spin against each other. Compare the ratio within a run, not times across runs.

    python benchmarks/update_speed.py               # ~14 min on 2 CPU cores (the 49k model is most of it)
    python benchmarks/update_speed.py --quick       # 64 rows, 1 repeat (~5 min)
    python benchmarks/update_speed.py --models tiny  # the quickstart model only (~1 min)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

MODELS = {  # name → Qwen2Config kwargs; --models picks by the first word
    "tiny (quickstart)": dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                              intermediate_size=512, vocab_size=1024),
    "vocab 49k": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                      intermediate_size=768, vocab_size=49152),
}


def build(name: str, directory: Path) -> Path:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    path = directory / name.split()[0]
    if not (path / "config.json").exists():
        torch.manual_seed(0)
        config = Qwen2Config(max_position_embeddings=4096, tie_word_embeddings=True, **MODELS[name])
        Qwen2ForCausalLM(config).save_pretrained(path)
    return path


def rows_and_advantages(vocab: int, n: int, response: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = [{"prompt_ids": rng.integers(5, vocab, max(int(rng.normal(214, 40)), 16)).tolist(),
             "response_ids": rng.integers(5, vocab, int(rng.integers(1, response + 1))).tolist()} for _ in range(n)]
    return rows, rng.normal(size=n)


def trainer_for(path: Path, threads: int):
    import torch

    from steprl.trainer.config import TrainerConfig
    from steprl.trainer.policy import PolicyTrainer, load_policy

    torch.set_num_threads(threads)
    config = TrainerConfig(lr=1e-4, minibatch_size=64, micro_batch_tokens=16384, ppo_epochs=1, device="cpu",
                           dtype="float32")
    policy = load_policy(str(path), config)
    return policy, PolicyTrainer(policy, config)


def memory_kb(field: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (peak since the last reset) of this process, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def child(path: str, keep: bool, rows: int, response: int, threads: int) -> None:
    """One update in this process; prints how far its resident memory rose above the start, as JSON."""
    policy, trainer = trainer_for(Path(path), threads)
    policy.keeps_logits = keep
    batch, advantages = rows_and_advantages(policy.model.config.vocab_size, rows, response)
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    before = memory_kb("VmRSS")
    trainer.update(batch, advantages)
    print(json.dumps({"peak_mb": (memory_kb("VmHWM") - before) / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=128, help="step rows per update")
    parser.add_argument("--response", type=int, default=8, help="longest response (tokens); lengths 1..this")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved updates per mode")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", default="tiny,vocab", help="comma-separated first words of the model names")
    parser.add_argument("--quick", action="store_true", help="64 rows, 1 repeat")
    parser.add_argument("--child", nargs=2, metavar=("PATH", "KEEP"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.rows, args.repeats = 64, 1
    if args.child:
        child(args.child[0], args.child[1] == "1", args.rows, args.response, args.threads)
        return

    import numpy as np
    import torch

    print(f"# {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {args.threads} thread(s), "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"# {args.rows} rows per update, prompts ~214 ± 40 tokens, responses 1-{args.response} tokens, "
          f"median of {args.repeats} interleaved updates")
    print()
    print("| model | logits | update (s) | speed-up | peak memory of the update (MB) |")
    print("|---|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in [n for n in MODELS if n.split()[0] in args.models.split(",")]:
            path = build(name, Path(tmp))
            policy, trainer = trainer_for(path, args.threads)
            batch, advantages = rows_and_advantages(policy.model.config.vocab_size, args.rows, args.response)
            trainer.update(batch, advantages)  # warm-up: first-call allocations are not timed
            times = {True: [], False: []}
            for _ in range(args.repeats):
                for keep in (True, False):
                    policy.keeps_logits = keep
                    start = time.perf_counter()
                    trainer.update(batch, advantages)
                    times[keep].append(time.perf_counter() - start)
            del policy, trainer
            full = float(np.median(times[False]))
            for keep, label in ((False, "all columns"), (True, "last R + 1 columns")):
                out = subprocess.run([sys.executable, __file__, "--child", str(path), "1" if keep else "0",
                                      "--rows", str(args.rows), "--response", str(args.response),
                                      "--threads", str(args.threads)], capture_output=True, text=True, check=True)
                peak = json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"]
                median = float(np.median(times[keep]))
                print(f"| {name} | {label} | {median:.2f} | {full / median:.2f}× | {peak:.0f} |", flush=True)


if __name__ == "__main__":
    main()
