# The two commands of the README: `make demo` and `make test`. Both set everything up first.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint bench clean test-arm test-boot
ARCH ?= arm64

setup:
	@sh scripts/setup.sh

demo: setup
	$(BIN)/cost-agent demo

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

# The suite and the benches as ARM code under qemu-user (ARCH=arm64|armhf); see docs/arm.md.
test-arm: setup
	ARCH=$(ARCH) bash scripts/arm.sh test

# An arm64 Debian image booted by systemd in qemu-system-aarch64, with the agent's unit.
test-boot: setup
	bash scripts/boot.sh test
