# The two commands of the README: `make demo` and `make test`. Both set everything up first.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint bench clean

setup:
	@sh scripts/setup.sh

demo: setup
	$(BIN)/cost-agent demo --evses 2

lint: setup
	$(BIN)/ruff check agent tests bench
	$(BIN)/mypy

bench: setup
	$(BIN)/python bench/decode.py

test: lint
	$(BIN)/python bench/decode.py --check
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
