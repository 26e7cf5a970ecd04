"""The stages import only to their left: envs ← agent ← credit ← trainer; evaluation uses envs and agent.

An AST walk over every module (lazy imports inside functions included). A new back edge fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("envs", "agent", "credit", "trainer", "evaluation")
ALLOWED = {
    "envs": {"envs"},
    "agent": {"agent", "envs"},
    "credit": {"credit", "agent", "envs"},
    "trainer": {"trainer", "credit", "agent", "envs"},
    "evaluation": {"evaluation", "agent", "envs"},
}
# Edges the design names: the run directory and checkpoint layout is one module that the
# trainer writes and evaluation reads (`steprl eval RUN_DIR`).
EXCEPTIONS = {("evaluation", "steprl.trainer.checkpoint")}
SHELL = ("steprl.cli", "steprl.commands", "steprl.config", "steprl.loader", "steprl.bench", "steprl.__main__")


def imported_modules(path: Path, package: str) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    parts = ["steprl", *path.relative_to(ROOT).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    here = parts if path.name == "__init__.py" else parts[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            out.append((node.lineno, module))
            if module == "steprl":  # from steprl import envs, credit
                out += [(node.lineno, f"steprl.{alias.name}") for alias in node.names]
    return out


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "steprl" and parts[1] in STAGES else None


def violations() -> list[str]:
    found = []
    for stage in STAGES:
        for path in sorted((ROOT / stage).rglob("*.py")):
            for line, module in imported_modules(path, stage):
                if module.split(".")[0] in STAGES:
                    found.append(f"{path.relative_to(ROOT)}:{line} imports {module!r} by its bare name")
                if module.startswith(SHELL) or module in ("steprl.cli",):
                    found.append(f"{path.relative_to(ROOT)}:{line} imports the shell ({module})")
                target = stage_of(module)
                if target is None or target in ALLOWED[stage]:
                    continue
                if any(stage == s and module.startswith(m) for s, m in EXCEPTIONS):
                    continue
                found.append(f"{path.relative_to(ROOT)}:{line}: {stage} -> {target} ({module})")
    return found


def test_no_back_edges_between_stages():
    assert violations() == []


def test_the_walk_sees_lazy_relative_and_from_steprl_imports(tmp_path, monkeypatch):
    """The checker itself: each import form it must catch, in a scratch tree."""
    import tests.steprl.test_layering as layering

    (tmp_path / "agent").mkdir()
    for stage in STAGES:
        (tmp_path / stage).mkdir(exist_ok=True)
    (tmp_path / "agent" / "bad.py").write_text(
        "def f():\n    from steprl import credit\n"        # lazy, from-steprl form
        "import steprl.trainer.loop\n"                       # absolute
        "from steprl.evaluation import report\n"             # from-module form
        "from steprl.cli import main\n")                     # the shell
    (tmp_path / "envs" / "sub").mkdir()
    (tmp_path / "envs" / "sub" / "__init__.py").write_text("from ...agent import rollout\n")  # relative, up two
    monkeypatch.setattr(layering, "ROOT", tmp_path)
    found = layering.violations()
    assert any("agent -> credit" in v for v in found)
    assert any("agent -> trainer" in v for v in found)
    assert any("agent -> evaluation" in v for v in found)
    assert any("imports the shell (steprl.cli)" in v for v in found)
    assert any(v.startswith("envs/sub/__init__.py:1: envs -> agent") for v in found)
