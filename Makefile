# Every target installs what it needs into .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
ARGS   ?=

.PHONY: install run test lint bench faults faults-slow infra-up infra-down clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' -e ./client
	touch $(STAMP)

install: $(STAMP)  ## create .venv with the engine and its dev tools

run: $(STAMP)  ## the main job: simulate, ingest, summarise (ARGS="--days 30")
	$(BIN)/amc-learning run $(ARGS)

test: $(STAMP)  ## the whole suite: unit + integration on the embedded broker and PostgreSQL
	$(BIN)/python -m pytest $(ARGS)

bench: $(STAMP)  ## measure against the raw limits of this machine (QUICK=1: reduced, < 3 min)
	$(BIN)/python -m bench $(if $(QUICK),--quick) $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

infra-up: $(STAMP)
	$(BIN)/amc-learning infra up

infra-down: $(STAMP)
	$(BIN)/amc-learning infra down

clean:  ## remove the environment (keeps .data, the embedded database)
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache

faults: $(STAMP)  ## the fault suite alone, longer variants: 30 s outage, 12 kills, bigger stream
	LEARNING_FAULTS_LONG=1 $(BIN)/python -m pytest tests/faults --timeout 1800 $(ARGS)

faults-slow: $(STAMP)  ## the fault suite on one core shared with a CPU hog (a slow machine, on purpose)
	taskset -c 0 sh -c 'taskset -c 0 sh -c "while :; do :; done" & hog=$$!; \
	  trap "kill $$hog" EXIT; $(BIN)/python -m pytest tests/faults $(ARGS)'
