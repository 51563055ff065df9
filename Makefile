# One command to install and start, one to run every test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test install lint format bench typecheck

$(BIN)/connect-user-bot: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/connect-user-bot

# Socket Mode when SLACK_APP_TOKEN is set (no public URL needed), HTTP on $$PORT otherwise.
run: install
	@if [ -n "$$SLACK_APP_TOKEN" ] || grep -qs '^SLACK_APP_TOKEN=.' .env; then \
		exec $(BIN)/connect-user-bot socket; \
	else \
		exec $(BIN)/connect-user-bot serve; \
	fi

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

# Benchmarks against bare Bolt in the same run; writes bench/results.md (see bench/README.md).
bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
