"""CUDA / bf16 check of the trainer and the HF engine, on whatever device is here (CUDA when present).

Each check is recorded pass/fail with its figures in a JSON report, and the next one runs
whatever happened; nothing is downloaded (from-scratch Qwen2 models, a toy env):

  a  the tiny test model (``agent.models.build_tiny_model``) loaded on the device in fp32 and
     bf16, by the engine's loader (``load_model``) and the trainer's (``load_policy``);
  b  ``HFEngine`` generation: greedy and seeded sampling repeat exactly; the engine's token
     log-probs against the trainer's teacher-forced ones (``PolicyTrainer.logprobs_table``, i.e.
     ``Policy.token_logprobs``) on the same tokens, for a standalone engine and for the engine
     sharing the policy's module as the RL loop does; fp32 and bf16;
  c  one ``PolicyTrainer.update`` in bf16 on GiGPO / GRPO advantages from ``credit.estimate``:
     full fine-tuning (fp32 master weights, autocast, KL reference copy) and LoRA (bf16 base,
     fp32 adapters, adapter-off reference); loss finite, weights changed, dtypes, peak memory;
  d  ``save_checkpoint`` → ``load_checkpoint(...).restore`` into a fresh policy and trainer:
     identical weights and optimizer state, and the next update continues identically;
     ``Policy.export_pretrained`` reloads as the engine's weights;
  e  a short end-to-end ``RLRun`` (the ``steprl train`` recipe: SFT warm start on expert steps, GiGPO,
     evaluation, checkpoints) on the toy corridor env of the test suite (tests/envs/toy.py: no env
     dependency beyond gymnasium), trainer dtype ``auto`` (bf16 on CUDA);
  f  a SmolLM2-135M-shaped random model (CUDA; a small stand-in on CPU): fp32 vs bf16 log-probs on
     the same weights, update time and peak memory, full and LoRA.

    python benchmarks/device_check.py --out /tmp/device_check.json           # CUDA when present
    python benchmarks/device_check.py --device cpu --out /tmp/dc.json        # CPU dry run (~1-2 min)

scripts/device_check.sh installs what a bare torch+transformers+peft image lacks and runs this.
Exit status 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.envs.toy, and steprl from the checkout

IMPORT_MODE = "installed"
try:
    import steprl.trainer  # noqa: F401  (editable install: steprl.trainer → trainer/)
except ModuleNotFoundError as exc:
    if exc.name not in ("steprl.trainer", "steprl"):
        raise  # a missing dependency (pydantic, ...): say so, do not paper over it
    # Not installed: map steprl.envs → envs/, steprl.trainer → trainer/, ... as pyproject's package-dir does.
    import steprl

    steprl.__path__.append(str(ROOT))
    IMPORT_MODE = "checkout (steprl.__path__ extended; not pip-installed)"

import numpy as np
import torch

# bounds (max |Δ log p| per token)
FP32_LOGPROB_TOL = 1e-4
BF16_LOGPROB_TOL = 0.25  # loose: bf16 has ~3 significant digits; the figures matter more than the bound


# -- the report -----------------------------------------------------------------------------
class Report:
    def __init__(self, path: Path, device: torch.device):
        self.path = path
        self.data = {"environment": environment(device), "checks": [], "summary": {}}
        self.write()

    def write(self) -> None:
        checks = self.data["checks"]
        self.data["summary"] = {"passed": sum(c["ok"] for c in checks), "failed": sum(not c["ok"] for c in checks),
                                "failed_checks": [c["name"] for c in checks if not c["ok"]]}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=_plain) + "\n")
        os.replace(tmp, self.path)

    @contextlib.contextmanager
    def check(self, name: str, device: torch.device):
        """Run one check: its body fills ``figures`` and calls ``expect``; an exception fails it, the run goes on."""
        record = {"name": name, "ok": True, "figures": {}, "failures": [], "error": None, "seconds": None}
        figures = record["figures"]

        def expect(condition, what: str) -> bool:
            if not bool(condition):
                record["failures"].append(what)
            return bool(condition)

        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        try:
            yield figures, expect
        except Exception as exc:  # noqa: BLE001 - recorded, and the next check runs
            record["error"] = f"{type(exc).__name__}: {exc}"
            record["traceback"] = traceback.format_exc()[-4000:]
        record["seconds"] = round(time.perf_counter() - start, 2)
        if device.type == "cuda":
            record["figures"].setdefault("peak_cuda_mib", round(torch.cuda.max_memory_allocated(device) / 2**20, 1))
        record["ok"] = record["error"] is None and not record["failures"]
        self.data["checks"].append(record)
        self.write()
        status = "PASS" if record["ok"] else "FAIL"
        print(f"{status} {name} ({record['seconds']}s) {_short(figures)}", flush=True)
        for failure in record["failures"]:
            print(f"     expected: {failure}", flush=True)
        if record["error"]:
            print(f"     error: {record['error'][:600]}", flush=True)
        release(device)


def _plain(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, (torch.dtype, torch.device, Path)):
        return str(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return repr(value)


def _short(figures: dict, limit: int = 400) -> str:
    text = json.dumps(figures, default=_plain)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def environment(device: torch.device) -> dict:
    import peft
    import transformers

    info = {
        "device": str(device), "python": platform.python_version(), "machine": platform.machine(),
        "cpu_count": os.cpu_count(), "torch": torch.__version__, "transformers": transformers.__version__,
        "peft": peft.__version__, "numpy": np.__version__, "torch_threads": torch.get_num_threads(),
        "steprl_import": IMPORT_MODE, "cuda_available": torch.cuda.is_available(),
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
    }
    for name in ("pydantic", "gymnasium"):
        try:
            info[name] = __import__(name).__version__
        except Exception as exc:  # noqa: BLE001
            info[name] = f"missing ({exc})"
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(cuda=torch.version.cuda, gpu=props.name, gpu_mem_gib=round(props.total_memory / 2**30, 1),
                    bf16_supported=torch.cuda.is_bf16_supported(), cudnn=torch.backends.cudnn.version())
    return info


# -- helpers --------------------------------------------------------------------------------
def trainer_config(device: torch.device, dtype: str, **overrides):
    from steprl.trainer.config import TrainerConfig

    settings = dict(device=device.type, dtype=dtype, lr=1e-4, minibatch_size=256, micro_batch_tokens=4096,
                    ppo_epochs=1, max_grad_norm=1.0, seed=0)
    settings.update(overrides)
    return TrainerConfig(**settings)


def chat_prompts(tokenizer, count: int = 6) -> list[list[int]]:
    """Chat-templated prompts of different lengths (the engine left-pads them)."""
    bodies = ["You are in room 0 of 3. Reach room 3.", "east",
              "You are in room 1 of 4.\nAdmissible actions: east, west",
              "Reach room 5. You are in room 2 of 5. Admissible actions: east, west. Your last 4 steps: east, east",
              "west west east", "Task: Reach room 2. Observation: You are in room 0 of 2."]
    prompts = []
    for i in range(count):
        text = tokenizer.apply_chat_template([{"role": "user", "content": bodies[i % len(bodies)] * (1 + i // 3)}],
                                             add_generation_prompt=True, tokenize=False)
        prompts.append(tokenizer(text, add_special_tokens=False).input_ids)
    return prompts


def logprob_gap(trainer, policy, prompts, completions) -> dict:
    """Engine log-probs vs the trainer's teacher-forced ones on the same (prompt, response) tokens."""
    rows, sampled = [], []
    for prompt, group in zip(prompts, completions):
        for completion in group:
            if completion.token_ids:
                rows.append({"prompt_ids": prompt, "response_ids": completion.token_ids})
                sampled.append(completion.logprobs)
    table = trainer.logprobs_table(policy, rows).cpu().double().numpy()
    diffs = np.concatenate([np.abs(table[i, : len(lp)] - np.asarray(lp, dtype=np.float64))
                            for i, lp in enumerate(sampled)])
    return {"tokens": int(diffs.size), "max_abs_diff": float(diffs.max()), "mean_abs_diff": float(diffs.mean())}


def synthetic_rows(vocab: int, groups: int = 4, k: int = 4, steps: int = 3, seed: int = 0, stop_id: int | None = None,
                   prompt_range=(40, 120), response_max: int = 8):
    """Step rows of ``groups × k`` trajectories of ``steps`` steps, with the fields ``credit.StepBatch`` reads."""
    rng = np.random.default_rng(seed)
    rows, meta = [], {"group_id": [], "traj_id": [], "step": [], "reward": [], "anchor": []}
    for g in range(groups):
        for j in range(k):
            success = bool(rng.random() < 0.5)
            for t in range(steps):
                response = rng.integers(5, vocab, int(rng.integers(1, response_max + 1))).tolist()
                if stop_id is not None and rng.random() < 0.5:
                    response[-1] = stop_id
                rows.append({"prompt_ids": rng.integers(5, vocab, int(rng.integers(*prompt_range))).tolist(),
                             "response_ids": response})
                meta["group_id"].append(g)
                meta["traj_id"].append(g * k + j)
                meta["step"].append(t)
                meta["reward"].append(1.0 if (success and t == steps - 1) else 0.0)
                meta["anchor"].append(f"g{g}-s{t}-{int(rng.integers(2))}")  # repeated states: GiGPO step groups
    return rows, meta


def advantages_for(estimator: str, meta: dict, **params) -> np.ndarray:
    from steprl import credit

    batch = credit.StepBatch(meta["group_id"], meta["traj_id"], meta["step"], meta["reward"], meta["anchor"])
    return credit.estimate(estimator, batch, **params)


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def changes(before: dict, module: torch.nn.Module) -> dict[str, float]:
    """Per parameter: max |new − old|."""
    return {name: float((p.detach().float() - before[name].float()).abs().max())
            for name, p in module.named_parameters()}


def dtypes_of(params) -> list[str]:
    return sorted({str(p.dtype).replace("torch.", "") for p in params})


def finite(metrics: dict) -> bool:
    return all(math.isfinite(v) for v in metrics.values() if isinstance(v, float))


def cuda_sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def max_state_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    worst = 0.0
    for name, tensor in a.items():
        worst = max(worst, float((tensor.detach().float() - b[name].detach().float()).abs().max()))
    return worst


def optimizer_tensors(optimizer) -> list[torch.Tensor]:
    return [t for state in optimizer.state_dict()["state"].values() for t in state.values() if torch.is_tensor(t)]


# -- the checks -----------------------------------------------------------------------------
def check_a_model(report: Report, device: torch.device, model_dir: Path, work: Path) -> None:
    from steprl.agent.engines.base import resolve_dtype
    from steprl.agent.models import build_tiny_model, load_model
    from steprl.trainer.policy import load_policy

    with report.check("a_tiny_model_build", device) as (fig, expect):
        from tests.envs import toy  # noqa: F401  (registers toy/Corridor-v0, the corpus of the tokenizer)

        start = time.perf_counter()
        build_tiny_model("toy/Corridor-v0", model_dir, hidden=128, layers=2, vocab=512, num_tasks=4, seed=0)
        fig["build_s"] = round(time.perf_counter() - start, 2)
        fig["auto_dtype_on_device"] = str(resolve_dtype("auto", device))
        if device.type == "cuda":
            expect(resolve_dtype("auto", device) == torch.bfloat16, "dtype='auto' resolves to bf16 on this CUDA device")
        expect((model_dir / "config.json").exists(), "the model folder was written")

    for dtype_name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        with report.check(f"a_tiny_model_load_{dtype_name}", device) as (fig, expect):
            model, tokenizer = load_model(str(model_dir), dtype=dtype_name, device=device)
            params = list(model.parameters())
            fig["engine_params"] = sum(p.numel() for p in params)
            fig["engine_param_dtypes"] = dtypes_of(params)
            fig["engine_param_devices"] = sorted({p.device.type for p in params})
            expect(all(p.dtype == dtype and p.device.type == device.type for p in params),
                   f"load_model(dtype={dtype_name}) puts every weight on {device.type} in {dtype_name}")
            ids = torch.tensor([chat_prompts(tokenizer, 1)[0]], device=device)
            with torch.no_grad():
                logits = model(input_ids=ids).logits
            fig["engine_logits_dtype"] = str(logits.dtype)
            expect(torch.isfinite(logits).all(), "engine forward logits are finite")
            del model
            policy = load_policy(str(model_dir), trainer_config(device, dtype_name))
            pparams = list(policy.model.parameters())
            fig["policy_dtype"] = str(policy.dtype)
            fig["policy_master_dtypes"] = dtypes_of(pparams)
            fig["policy_devices"] = sorted({p.device.type for p in pparams})
            expect(policy.dtype == dtype, f"Policy compute dtype is {dtype_name}")
            expect(all(p.dtype == torch.float32 and p.device.type == device.type for p in pparams),
                   "full fine-tuning keeps fp32 master weights on the device")


def check_b_engine(report: Report, device: torch.device, model_dir: Path, n_throughput: int) -> None:
    from steprl.agent.engines import HFEngine, Sampling
    from steprl.agent.models import load_tokenizer
    from steprl.trainer.policy import PolicyTrainer, load_policy

    tokenizer = load_tokenizer(str(model_dir))
    prompts = chat_prompts(tokenizer)
    greedy = Sampling(temperature=0.0, max_new_tokens=16)
    sampled = Sampling(temperature=1.0, max_new_tokens=16, seed=1234)
    for dtype_name, tol in (("float32", FP32_LOGPROB_TOL), ("bfloat16", BF16_LOGPROB_TOL)):
        with report.check(f"b_engine_standalone_{dtype_name}", device) as (fig, expect):
            engine = HFEngine.from_pretrained(str(model_dir), dtype=dtype_name, device=device)
            fig["engine_dtype"] = dtypes_of(engine.model.parameters())
            first = engine.generate(prompts, n=1, sampling=greedy)
            second = engine.generate(prompts, n=1, sampling=greedy)
            same_tokens = all(a[0].token_ids == b[0].token_ids for a, b in zip(first, second))
            lp_repeat = max((abs(x - y) for a, b in zip(first, second) for x, y in zip(a[0].logprobs, b[0].logprobs)),
                            default=0.0)
            fig["greedy_repeat_tokens_equal"] = same_tokens
            fig["greedy_repeat_logprob_max_diff"] = lp_repeat
            fig["greedy_lengths"] = [len(c[0].token_ids) for c in first]
            expect(same_tokens, "greedy decoding twice gives the same tokens")
            expect(lp_repeat == 0.0, "greedy decoding twice gives bitwise the same log-probs")
            s1 = engine.generate(prompts, n=4, sampling=sampled)
            s2 = engine.generate(prompts, n=4, sampling=sampled)
            seeded_equal = all(a.token_ids == b.token_ids for ga, gb in zip(s1, s2) for a, b in zip(ga, gb))
            fig["seeded_sampling_repeat_equal"] = seeded_equal
            expect(seeded_equal, "seeded sampling twice gives the same tokens")
            alone = [engine.generate([p], n=1, sampling=greedy)[0][0].token_ids for p in prompts]
            fig["greedy_single_vs_batched_equal"] = sum(a == b[0].token_ids for a, b in zip(alone, first))  # info only
            fig["greedy_single_vs_batched_of"] = len(prompts)

            policy = load_policy(str(model_dir), trainer_config(device, dtype_name))
            trainer = PolicyTrainer(policy, trainer_config(device, dtype_name))
            greedy_gap = logprob_gap(trainer, policy, prompts, first)
            sampled_gap = logprob_gap(trainer, policy, prompts, s1)
            fig["vs_trainer_greedy"] = greedy_gap
            fig["vs_trainer_sampled"] = sampled_gap
            fig["tolerance"] = tol
            expect(greedy_gap["max_abs_diff"] <= tol and sampled_gap["max_abs_diff"] <= tol,
                   f"engine vs trainer log-probs within {tol} (engine {dtype_name} weights, trainer "
                   f"{'fp32' if dtype_name == 'float32' else 'fp32 master + bf16 autocast'})")
            if n_throughput:
                batch = [prompts[i % len(prompts)] for i in range(n_throughput)]
                cuda_sync(device)
                start = time.perf_counter()
                out = engine.generate(batch, n=1, sampling=Sampling(temperature=1.0, max_new_tokens=32, seed=0))
                cuda_sync(device)
                seconds = time.perf_counter() - start
                tokens = sum(len(c[0].token_ids) for c in out)
                fig["throughput"] = {"sequences": n_throughput, "tokens": tokens, "seconds": round(seconds, 3),
                                     "tokens_per_s": round(tokens / seconds, 1)}

        with report.check(f"b_engine_shared_module_{dtype_name}", device) as (fig, expect):
            # The RL loop's HF engine generates with the policy's own module (make_engine(module=...)).
            policy = load_policy(str(model_dir), trainer_config(device, dtype_name))
            trainer = PolicyTrainer(policy, trainer_config(device, dtype_name))
            engine = HFEngine(policy.model, tokenizer)
            fig["engine_weights_dtype"] = dtypes_of(engine.model.parameters())
            fig["trainer_compute_dtype"] = str(policy.dtype)
            first = engine.generate(prompts, n=1, sampling=greedy)
            second = engine.generate(prompts, n=1, sampling=greedy)
            expect(all(a[0].token_ids == b[0].token_ids for a, b in zip(first, second)), "greedy repeats exactly")
            expect(not policy.model.training, "generate leaves the module in eval mode")
            gap = logprob_gap(trainer, policy, prompts, engine.generate(prompts, n=4, sampling=sampled))
            fig["vs_trainer_sampled"] = gap
            fig["tolerance"] = tol
            expect(gap["max_abs_diff"] <= tol, f"engine (shared module) vs trainer log-probs within {tol}")


def check_c_update(report: Report, device: torch.device, model_dir: Path, work: Path, state: dict) -> None:
    from steprl.agent.engines import HFEngine, Sampling
    from steprl.agent.models import load_tokenizer
    from steprl.trainer.policy import PolicyTrainer, load_policy

    tokenizer = load_tokenizer(str(model_dir))
    vocab = len(tokenizer)
    rows, meta = synthetic_rows(vocab, stop_id=tokenizer.convert_tokens_to_ids("<|im_end|>"))
    fig_rows = {"rows": len(rows), "response_tokens": sum(len(r["response_ids"]) for r in rows)}

    # full fine-tuning, GiGPO's paper settings (KL to a frozen copy, entropy bonus)
    with report.check("c_update_full_bf16_gigpo", device) as (fig, expect):
        config = trainer_config(device, "bfloat16", kl_coef=0.01, entropy_coef=0.001, micro_batch_tokens=2048)
        policy = load_policy(str(model_dir), config)
        trainer = PolicyTrainer(policy, config)
        advantages = advantages_for("gigpo", meta, gamma=0.95, step_weight=1.0, normalize="mean_std")
        fig.update(fig_rows, advantage_std=float(advantages.std()))
        expect(np.isfinite(advantages).all() and advantages.std() > 0, "GiGPO advantages are finite and not all equal")
        before = snapshot(policy.model)
        cuda_sync(device)
        start = time.perf_counter()
        metrics = trainer.update(rows, advantages)
        cuda_sync(device)
        fig["update_s"] = round(time.perf_counter() - start, 3)
        fig["metrics"] = {k: round(v, 6) for k, v in metrics.items()}
        delta = changes(before, policy.model)
        fig["params_changed"] = f"{sum(v > 0 for v in delta.values())}/{len(delta)}"
        fig["max_param_change"] = max(delta.values())
        fig["master_dtypes"] = dtypes_of(policy.model.parameters())
        fig["reference_dtypes"] = dtypes_of(trainer.reference.model.parameters())
        expect(finite(metrics), "every update metric is finite")
        expect(metrics["train/grad_norm"] > 0, "a non-zero gradient")
        expect(all(v > 0 for v in delta.values()), "every trainable weight changed")
        expect(fig["master_dtypes"] == ["float32"], "master weights stay fp32")
        expect(fig["reference_dtypes"] == ["bfloat16"], "the KL reference copy is in bf16")
        expect(metrics["train/approx_kl"] < 1e-2 and metrics["train/clip_frac"] < 0.05,
               "π_old recomputed = π_θ before the one optimizer step (approx_kl, clip_frac ≈ 0)")
        expect(all(p.grad is None for p in policy.model.parameters()), "gradients are released after the update")
        state["full"] = (config, policy, trainer, rows, advantages)

    with report.check("c_update_lora_bf16_grpo", device) as (fig, expect):
        config = trainer_config(device, "bfloat16", kl_coef=0.01, lora={"enabled": True, "r": 16, "alpha": 32.0},
                                lr=1e-3)
        policy = load_policy(str(model_dir), config)
        trainer = PolicyTrainer(policy, config)
        advantages = advantages_for("grpo", meta)
        fig.update(fig_rows)
        named = dict(policy.model.named_parameters())
        adapters = {n for n, p in named.items() if p.requires_grad}
        fig["adapter_dtypes"] = dtypes_of(named[n] for n in adapters)
        fig["base_dtypes"] = dtypes_of(p for n, p in named.items() if n not in adapters)
        fig["trainable_params"] = sum(named[n].numel() for n in adapters)
        expect(adapters and all(".lora_" in n for n in adapters), "only LoRA adapters are trainable")
        expect(fig["adapter_dtypes"] == ["float32"], "adapters in fp32")
        expect(fig["base_dtypes"] == ["bfloat16"], "frozen base in bf16")
        before = snapshot(policy.model)
        cuda_sync(device)
        start = time.perf_counter()
        metrics = trainer.update(rows, advantages)
        cuda_sync(device)
        fig["update_s"] = round(time.perf_counter() - start, 3)
        fig["metrics"] = {k: round(v, 6) for k, v in metrics.items()}
        delta = changes(before, policy.model)
        fig["adapters_changed"] = f"{sum(delta[n] > 0 for n in adapters)}/{len(adapters)}"
        fig["base_max_change"] = max(v for n, v in delta.items() if n not in adapters)
        expect(finite(metrics) and metrics["train/grad_norm"] > 0, "finite metrics, non-zero gradient")
        expect(any(delta[n] > 0 for n in adapters if "lora_B" in n), "lora_B weights moved off zero")
        expect(fig["base_max_change"] == 0.0, "the frozen base did not change")
        merged = policy.state_dict_for_engine()
        base_names = set(dict(policy.model.get_base_model().state_dict()))
        fig["merged_dtypes"] = sorted({str(t.dtype).replace("torch.", "") for t in merged.values()})
        expect(not any(".lora_" in n or ".base_layer." in n for n in merged), "merged names are the base model's")
        expect(len(merged) < len(base_names), "merged state has no adapter entries")
        # the loop's HF engine on the LoRA module: bf16 base + fp32 adapters, no autocast
        engine = HFEngine(policy.model, tokenizer)
        prompts = chat_prompts(tokenizer)
        out = engine.generate(prompts, n=2, sampling=Sampling(temperature=1.0, max_new_tokens=8, seed=0))
        gap = logprob_gap(trainer, policy, prompts, out)
        fig["engine_on_lora_module_vs_trainer"] = gap
        expect(gap["max_abs_diff"] <= BF16_LOGPROB_TOL,
               f"LoRA module: engine vs trainer log-probs within {BF16_LOGPROB_TOL}")
        # a standalone bf16 engine synced with the merged weights (what a vLLM engine gets)
        standalone = HFEngine.from_pretrained(str(model_dir), dtype="bfloat16", device=device)
        standalone.update_weights(merged)
        own = standalone.model.state_dict()
        fig["synced_engine_max_diff"] = max(float((own[n].float() - t.to(own[n].dtype).float()).abs().max())
                                            for n, t in merged.items())
        expect(fig["synced_engine_max_diff"] == 0.0, "update_weights copies the merged weights exactly (bf16)")
        state["lora"] = (config, policy, trainer, rows, advantages)


def check_d_checkpoint(report: Report, device: torch.device, model_dir: Path, work: Path, state: dict) -> None:
    from steprl.agent.models import load_model
    from steprl.trainer.checkpoint import load_checkpoint, save_checkpoint, verify_checkpoint
    from steprl.trainer.policy import PolicyTrainer, load_policy

    for kind in ("full", "lora"):
        with report.check(f"d_checkpoint_{kind}_bf16", device) as (fig, expect):
            if kind not in state:
                raise RuntimeError(f"c_update_{kind} failed; nothing to checkpoint")
            config, policy, trainer, rows, advantages = state[kind]
            run_dir = work / f"run_{kind}"
            start = time.perf_counter()
            path = save_checkpoint(run_dir, 1, policy=policy, components={"trainer": trainer}, extra={"note": kind})
            fig["save_s"] = round(time.perf_counter() - start, 3)
            fig["files"] = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
            expect(verify_checkpoint(path) is None, "verify_checkpoint: intact")
            fresh = load_policy(str(model_dir), config)
            fresh_trainer = PolicyTrainer(fresh, config)
            checkpoint = load_checkpoint(path)
            checkpoint.restore(fresh, {"trainer": fresh_trainer})
            want, got = policy.model.state_dict(), fresh.model.state_dict()
            fig["weights_max_diff"] = max_state_diff(want, got)
            same_meta = all(want[n].dtype == got[n].dtype and want[n].device == got[n].device for n in want)
            expect(want.keys() == got.keys() and fig["weights_max_diff"] == 0.0, "restored weights are identical")
            expect(same_meta, "restored weights have the same dtypes and devices")
            opt_a, opt_b = optimizer_tensors(trainer.optimizer), optimizer_tensors(fresh_trainer.optimizer)
            fig["optimizer_tensors"] = len(opt_a)
            fig["optimizer_max_diff"] = max((float((a.float() - b.float()).abs().max()) for a, b in zip(opt_a, opt_b)),
                                            default=0.0)
            fig["optimizer_state_devices"] = sorted({t.device.type for t in opt_b if t.dim() > 0})
            expect(len(opt_a) == len(opt_b) and fig["optimizer_max_diff"] == 0.0, "optimizer state identical")
            expect(fig["optimizer_state_devices"] in ([device.type], []), f"optimizer state on {device.type}")
            expect(fresh_trainer.updates == trainer.updates, "update counter restored")
            # the next update from the original and from the restored trainer
            m1 = trainer.update(rows, advantages)
            m2 = fresh_trainer.update(rows, advantages)
            fig["next_update_weights_max_diff"] = max_state_diff(policy.model.state_dict(), fresh.model.state_dict())
            fig["next_update_loss"] = [m1["train/loss"], m2["train/loss"]]
            bound = 0.0 if device.type == "cpu" else 1e-3  # CUDA backward (atomics) need not be bitwise repeatable
            expect(fig["next_update_weights_max_diff"] <= bound,
                   f"the update after restore matches the original's (≤ {bound})")
            export = work / f"export_{kind}"
            policy.export_pretrained(export)
            model, _ = load_model(str(export), dtype="float32", device=device)
            merged = policy.state_dict_for_engine()
            own = model.state_dict()
            fig["export_reload_max_diff"] = max(float((own[n].float() - t.float()).abs().max())
                                                for n, t in merged.items())
            expect(fig["export_reload_max_diff"] == 0.0, "export_pretrained reloads as exactly the engine weights")
            del state[kind]


def check_e_loop(report: Report, device: torch.device, model_dir: Path, work: Path, iterations: int) -> None:
    with report.check("e_train_loop_toy_corridor", device) as (fig, expect):
        from steprl.config import load_run_config
        from steprl.trainer.loop import RLRun
        from tests.envs import toy  # noqa: F401  (registers toy/Corridor-v0)

        run_dir = work / "loop_run"
        overrides = [
            f"run.dir={run_dir}", "run.overwrite=true", f"run.iterations={iterations}", "run.tasks_per_iteration=4",
            "run.group_size=4", f"run.save_every={iterations}", "run.progress=false", "env.id=toy/Corridor-v0",
            "env.kwargs={}", "env.train_tasks=8", "env.max_turns=6", "eval.split=valid", "eval.tasks=4",
            f"eval.every={iterations}", "eval.envs=4", "sft.steps=4", "sft.episodes=4", "sft.batch_size=8",
            "tiny_model=null", f"agent.model={model_dir}",
            "agent.max_new_tokens=4", "agent.history_k=1", "agent.max_prompt_tokens=256",
            f"trainer.device={device.type}", "trainer.dtype=auto", "trainer.micro_batch_tokens=8192",
            "trainer.minibatch_size=16", "trainer.lr=1e-4",
        ]
        config = load_run_config(str(ROOT / "configs" / "quickstart.yaml"), overrides)
        fig["credit"] = config.credit.estimator
        start = time.perf_counter()
        summary = RLRun(config).run()
        fig["wall_s"] = round(time.perf_counter() - start, 2)
        records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
        trained = [r for r in records if r.get("iteration", 0) > 0 and "train/loss" in r]
        fig["iteration_0"] = {k: v for k, v in (records[0] if records else {}).items() if k.startswith("sft/")}
        fig["iterations_logged"] = [r["iteration"] for r in trained]
        keep = ("train/loss", "train/grad_norm", "train/approx_kl", "rollout/episodes", "rollout/success",
                "time/rollout_s", "time/update_s")
        fig["last"] = {k: v for k, v in (trained[-1] if trained else {}).items() if k in keep}
        fig["success_curve"] = summary.get("success_curve") if isinstance(summary, dict) else None
        checkpoints = sorted(p.name for p in (run_dir / "checkpoints").glob("iter_*"))
        fig["checkpoints"] = checkpoints
        expect(len(trained) == iterations, f"{iterations} iterations trained and logged")
        expect(all(math.isfinite(r["train/loss"]) for r in trained), "finite losses")
        expect(f"iter_{iterations:06d}" in checkpoints, "the last iteration was checkpointed")


def check_f_medium(report: Report, device: torch.device, shape: dict) -> None:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from steprl.trainer.policy import Policy, PolicyTrainer

    label = "smollm2_135m_shape" if device.type == "cuda" else "small_stand_in"
    rows, meta = synthetic_rows(shape["vocab_size"], groups=8, k=8, steps=1, seed=1, prompt_range=(160, 320),
                                response_max=32)
    advantages = advantages_for("grpo", meta)
    info = {"shape": shape, "rows": len(rows),
            "tokens": sum(len(r["prompt_ids"]) + len(r["response_ids"]) for r in rows)}

    def build(config):
        torch.manual_seed(0)
        with torch.device(device):  # initialize on the device: a 135M model's CPU init would be most of the check
            model = Qwen2ForCausalLM(Qwen2Config(max_position_embeddings=1024, tie_word_embeddings=True, **shape))
        return Policy.from_model(model, config)

    with report.check(f"f_{label}_logprobs_fp32_vs_bf16", device) as (fig, expect):
        fig.update(info)
        policy32 = build(trainer_config(device, "float32", micro_batch_tokens=32768))
        trainer = PolicyTrainer(policy32, trainer_config(device, "float32", micro_batch_tokens=32768))
        fp32 = trainer.logprobs_table(policy32, rows)
        bf16_view = Policy(policy32.model, device=policy32.device, dtype=torch.bfloat16)  # same weights, autocast
        bf16 = trainer.logprobs_table(bf16_view, rows)
        mask = torch.zeros_like(fp32, dtype=torch.bool)
        for i, row in enumerate(rows):
            mask[i, : len(row["response_ids"])] = True
        diff = (fp32 - bf16).abs()[mask]
        fig["max_abs_diff"] = float(diff.max())
        fig["mean_abs_diff"] = float(diff.mean())
        fig["mean_logprob"] = float(fp32[mask].mean())
        expect(torch.isfinite(bf16[mask]).all(), "bf16 log-probs finite")
        expect(fig["max_abs_diff"] <= BF16_LOGPROB_TOL, f"fp32 vs bf16 autocast within {BF16_LOGPROB_TOL}")

    for lora in (False, True):
        name = f"f_{label}_update_{'lora' if lora else 'full'}_bf16"
        with report.check(name, device) as (fig, expect):
            fig.update(info)
            extra = {"lora": {"enabled": True}} if lora else {}
            config = trainer_config(device, "bfloat16", micro_batch_tokens=16384, minibatch_size=32, **extra)
            policy = build(config)
            trainer = PolicyTrainer(policy, config)
            before = snapshot(policy.model)
            trainer.update(rows, advantages)  # first update: allocations, optimizer state
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            cuda_sync(device)
            start = time.perf_counter()
            metrics = trainer.update(rows, advantages)
            cuda_sync(device)
            seconds = time.perf_counter() - start
            fig["update_s"] = round(seconds, 3)
            fig["tokens_per_s"] = round(info["tokens"] / seconds, 1)
            fig["metrics"] = {k: round(v, 6) for k, v in metrics.items()}
            if device.type == "cuda":
                fig["peak_cuda_mib_steady_update"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
            delta = changes(before, policy.model)
            trainable = {n for n, p in policy.model.named_parameters() if p.requires_grad}
            fig["trainable_changed"] = f"{sum(delta[n] > 0 for n in trainable)}/{len(trainable)}"
            expect(finite(metrics) and metrics["train/grad_norm"] > 0, "finite metrics, non-zero gradient")
            expect(all(delta[n] > 0 for n in trainable), "every trainable weight changed")


# -- main -------------------------------------------------------------------------------------
MEDIUM = {  # SmolLM2-135M's shape (the project's real model), random weights
    "cuda": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                 num_key_value_heads=3, vocab_size=49152),
    "cpu": dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
                num_key_value_heads=1, vocab_size=4096),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--out", default=os.path.join(os.environ.get("OUT", "/tmp"), "device_check.json"))
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--loop-iterations", type=int, default=None, help="e: RL iterations (default 3 CUDA, 2 CPU)")
    parser.add_argument("--skip", default="", help="comma-separated check letters to skip, e.g. e,f")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    device = torch.device("cuda" if (args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()))
                          else "cpu")
    skip = set(filter(None, args.skip.split(",")))
    report = Report(Path(args.out), device)
    print(f"# device_check on {device}: {_short(report.data['environment'], 600)}", flush=True)
    start = time.perf_counter()
    state: dict = {}
    with tempfile.TemporaryDirectory(prefix="steprl-device-check-") as tmp:
        work = Path(tmp)
        model_dir = work / "tiny"
        check_a_model(report, device, model_dir, work)
        if "b" not in skip:
            check_b_engine(report, device, model_dir, n_throughput=256 if device.type == "cuda" else 0)
        if "c" not in skip:
            check_c_update(report, device, model_dir, work, state)
        if "d" not in skip and "c" not in skip:
            check_d_checkpoint(report, device, model_dir, work, state)
        state.clear()
        release(device)
        if "e" not in skip:
            check_e_loop(report, device, model_dir, work, args.loop_iterations or (3 if device.type == "cuda" else 2))
        if "f" not in skip:
            check_f_medium(report, device, MEDIUM[device.type])
    report.data["total_s"] = round(time.perf_counter() - start, 1)
    report.write()
    summary = report.data["summary"]
    print(f"# device_check: {summary['passed']} passed, {summary['failed']} failed "
          f"{summary['failed_checks'] or ''} in {report.data['total_s']}s on {device} → {args.out}", flush=True)
    return 0 if summary["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
