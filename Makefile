# The two commands of the README: `make quickstart` (the main job) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.steprl-installed

.PHONY: quickstart test install bench

quickstart: $(STAMP)
	$(PY) -m steprl train

test: $(STAMP)
	$(PY) -m pytest

install: $(STAMP)

bench: $(STAMP)
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

$(STAMP): pyproject.toml scripts/install.sh
	bash scripts/install.sh
