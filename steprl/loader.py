"""YAML + dotted-override config loading that fails before any work, naming the field.

``load_config(path, ["trainer.lr=1e-4", "env.kwargs.level=[2,3]"], RunConfig)``:
the YAML file is read, each ``a.b.c=value`` override is parsed as YAML and set
at that path, and the result is validated by the pydantic model. Any problem
(missing file, bad YAML, unknown key, wrong type, value out of range) raises
:class:`ConfigError` whose message names the field, what was given and what
is allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

__all__ = ["ConfigError", "load_config", "apply_overrides", "format_validation_error"]

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A config that cannot run; the message names the field."""


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set ``a.b.c=value`` overrides (values parsed as YAML) in a nested dict, in place."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} must look like key.sub=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({exc})") from None
        if isinstance(value, str):  # YAML 1.1 reads 3e-4 as a string
            try:
                value = float(value)
            except ValueError:
                pass
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part!r} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return data


def format_validation_error(exc: ValidationError) -> str:
    """One line per problem: ``field.path: message (got value)``."""
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "<root>"
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown key (typo? see the config reference in docs/)"
        got = err.get("input")
        shown = "" if err["type"] in ("missing", "extra_forbidden") or isinstance(got, dict) else f" (got {got!r:.80})"
        lines.append(f"{where}: {message}{shown}")
    return "; ".join(lines)


def read_yaml_mapping(path: Path, what: str, expected: str) -> dict | None:
    """The YAML mapping at ``path`` (None for an empty file); :class:`ConfigError` naming ``what`` otherwise."""
    if not path.is_file():
        raise ConfigError(f"{what} {str(path)!r} not found")
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(f"{path}: the top level must be {expected}, got {type(loaded).__name__}")
    return loaded


def load_config(path: str | Path | None, overrides: list[str] | None, model: type[M]) -> M:
    """Read YAML at ``path`` (``None``: defaults only), apply overrides, validate with ``model``."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        loaded = read_yaml_mapping(path, "config file", "a mapping of sections")
        data = loaded or {}
    apply_overrides(data, list(overrides or []))
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid config: {format_validation_error(exc)}") from None
