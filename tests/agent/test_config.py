"""AgentConfig: strict keys, named bad values, documented fields."""

import pytest
from pydantic import ValidationError

from steprl.agent.config import AgentConfig
from steprl.agent.engines.base import Sampling


def test_defaults_and_sampling():
    config = AgentConfig(model="models/tiny", temperature=0.7, top_p=0.9, max_new_tokens=12)
    assert config.engine == "hf" and config.history_k == 4 and config.response_format == "plain"
    assert config.sampling(seed=3) == Sampling(temperature=0.7, top_p=0.9, top_k=0, max_new_tokens=12, seed=3)


@pytest.mark.parametrize(
    "field, value",
    [("histroy_k", 2), ("engine", "tgi"), ("temperature", -1.0), ("top_p", 0.0), ("history_k", -1),
     ("response_format", "json"), ("max_new_tokens", 0), ("dtype", "int8")],
)
def test_bad_values_name_the_field(field, value):
    with pytest.raises(ValidationError, match=field):
        AgentConfig(model="m", **{field: value})


def test_model_is_required():
    with pytest.raises(ValidationError, match="model"):
        AgentConfig()


def test_every_field_is_documented():
    undocumented = [name for name, f in AgentConfig.model_fields.items() if not f.description]
    assert undocumented == []


@pytest.mark.parametrize("kwargs", [{"temperature": -0.1}, {"top_p": 1.5}, {"top_k": -1}, {"max_new_tokens": 0}])
def test_sampling_validates(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        Sampling(**kwargs)
