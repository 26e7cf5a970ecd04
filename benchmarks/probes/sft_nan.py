"""Probe: does SFT on left-padded rows of very different prompt lengths give NaN on this device, and where?

    python benchmarks/probes/sft_nan.py            # CUDA when present
"""
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import tests.envs.toy  # noqa: E402,F401  (registers toy/Corridor-v0)
from steprl.agent.models import build_tiny_model  # noqa: E402
from steprl.trainer.config import TrainerConfig  # noqa: E402
from steprl.trainer.policy import load_policy  # noqa: E402
from steprl.trainer.sft import sft_step  # noqa: E402
from steprl.trainer.batching import make_micro_batches  # noqa: E402

device = "cuda" if torch.cuda.is_available() else "cpu"
work = Path(tempfile.mkdtemp())
build_tiny_model("toy/Corridor-v0", work / "m", hidden=128, layers=2, vocab=512, num_tasks=4, seed=0)
rng = np.random.default_rng(0)
V = min(int(__import__("json").loads((work / "m" / "config.json").read_text())["vocab_size"]), 500)


def rows(n, lo, hi):
    return [{"prompt_ids": rng.integers(5, V, int(rng.integers(lo, hi))).tolist(),
             "response_ids": rng.integers(5, V, int(rng.integers(5, 120))).tolist()} for _ in range(n)]


for dtype in ("float32", "bfloat16"):
    for attn in ("default", "eager"):
        cfg = TrainerConfig(device=device, dtype=dtype, lr=1e-3, micro_batch_tokens=65536, max_grad_norm=1.0, seed=0)
        policy = load_policy(str(work / "m"), cfg)
        if attn == "eager":
            policy.model.config._attn_implementation = "eager"
        opt = torch.optim.AdamW(policy.trainable_parameters(), lr=1e-3)
        # forward on one left-padded micro-batch: NaN in the logprobs? NaN in the gradients?
        batch = rows(16, 20, 1500)
        micro = make_micro_batches(batch, 10 ** 7, pad_id=policy.pad_id)[0]
        lp, _ = policy.token_logprobs(micro, with_entropy=False)
        masked = lp[micro.loss_mask.to(lp.device).bool()]
        loss = -(lp * micro.loss_mask.to(lp.device)).sum() / micro.loss_mask.sum()
        loss.backward()
        grads_nan = sum(int(not torch.isfinite(p.grad).all()) for p in policy.trainable_parameters() if p.grad is not None)
        opt.zero_grad(set_to_none=True)
        first_nan = None
        losses = []
        for step in range(60):
            value = sft_step(policy, opt, rows(16, 20, 1500), 65536, 1.0)
            losses.append(value)
            if first_nan is None and not np.isfinite(value):
                first_nan = step
        print(f"{device} {dtype} attn={attn} ({getattr(policy.model.config, '_attn_implementation', '?')}): "
              f"logprobs finite on targets {bool(torch.isfinite(masked).all())}, all positions "
              f"{bool(torch.isfinite(lp).all())}; params with NaN grads {grads_nan}; "
              f"60 SFT steps: first NaN loss at {first_nan}, losses {losses[0]:.3f} -> {losses[-1]:.3f}", flush=True)
