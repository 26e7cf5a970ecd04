import pytest
from pydantic import BaseModel, ConfigDict, Field

from steprl.envs.config import EnvConfig
from steprl.loader import ConfigError, apply_overrides, load_config


class Run(BaseModel):
    model_config = ConfigDict(extra="forbid")
    env: EnvConfig = Field(default_factory=EnvConfig)
    lr: float = 1e-3


def test_overrides_parse_yaml_values_and_nest():
    data = apply_overrides({"env": {"id": "textworld/simple-v0"}}, ["env.kwargs.level=[2, 3]", "lr=3e-4", "env.max_turns=7"])
    assert data == {"env": {"id": "textworld/simple-v0", "kwargs": {"level": [2, 3]}, "max_turns": 7}, "lr": 3e-4}


def test_yaml_file_and_override(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("env:\n  id: textworld/cooking-v0\n  train_tasks: 4\nlr: 0.01\n")
    cfg = load_config(path, ["env.train_tasks=8"], Run)
    assert (cfg.env.id, cfg.env.train_tasks, cfg.lr) == ("textworld/cooking-v0", 8, 0.01)


@pytest.mark.parametrize("overrides, message", [
    (["env.idd=x"], "env.idd: unknown key"),
    (["lr=fast"], "lr: Input should be a valid number"),
    (["env.max_turns=0"], "env.max_turns: Input should be greater than or equal to 1 (got 0)"),
    (["env.id=textworld/coin-v0"], "env.id: Value error, unknown env id 'textworld/coin-v0'. Did you mean"),
    (["env.num_workers=-1"], "env.num_workers: Input should be greater than or equal to 0 (got -1)"),
    (["lr"], "must look like key.sub=value"),
    (["lr=1", "lr.x=1"], "'lr' is a value, not a section"),
    (["lr.x=1"], "lr: Input should be a valid number"),
])
def test_bad_config_names_the_field(overrides, message):
    with pytest.raises(ConfigError) as err:
        load_config(None, overrides, Run)
    assert message in str(err.value)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml", [], Run)
    bad = tmp_path / "bad.yaml"
    bad.write_text("env: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad, [], Run)
