# The two commands of the README: `make demo` and `make test`. Both set everything up first.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint bench footprint clean test-arm test-boot screenshots yocto-tarball
ARCH ?= arm64

setup:
	@sh scripts/setup.sh

demo: setup
	$(BIN)/cost-agent demo --evses 2

lint: setup
	$(BIN)/ruff check agent tests bench
	$(BIN)/mypy

bench: setup
	$(BIN)/python bench/decode.py

# Issue 10's limits (RSS 1.30x, start 2.0x, idle CPU 0.2 %, growth 1 MB) on a quiet machine, ~6 min.
# `test` holds the memory limits (tests/test_footprint.py: the agent's own RSS over its libraries
# <= 2 MiB, the web output <= 2 MiB); not the timing ones: the start ratio moves between 1.1 and
# 2.3 on a busy 2-core machine. The RSS ratio is reported: with uvloop the libraries alone take
# 1.22x (this venv's python) to 1.25x (Debian's). `--check --quick` takes ~30 s.
footprint: setup
	$(BIN)/python bench/footprint.py --check --loop both

# The suite on every core (pytest-xdist: one worker process, and one private mosquitto, per
# core; WORKERS=0 runs it in this process), the slowest tests listed at the end.
WORKERS ?= auto
test: lint
	$(BIN)/python bench/decode.py --check
	$(BIN)/pytest -n $(WORKERS) -rs --durations=15 $(PYTEST_ARGS)

# Each screen of the web display at 800x480 in headless chromium, into docs/screens/.
screenshots: setup
	$(BIN)/python scripts/screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

# The suite and the benches as ARM code under qemu-user (ARCH=arm64|armhf); see docs/arm.md.
test-arm: setup
	ARCH=$(ARCH) bash scripts/arm.sh test

# An arm64 Debian image booted by systemd in qemu-system-aarch64, with the agent's unit.
test-boot: setup
	bash scripts/boot.sh test

# The source of the Yocto recipe (yocto/meta-cost-agent): a `git archive` of this tree at REV
# (committed files only; the Python sdist lacks systemd/ and etc/), top directory
# cost-agent-VERSION/, written next to the recipe. REV=v0.1.0 for a release tag.
REV ?= HEAD
YOCTO_FILES := yocto/meta-cost-agent/recipes-cost-agent/cost-agent/files
yocto-tarball:
	@ver=$$(sed -n 's/^version = "\(.*\)"$$/\1/p' pyproject.toml); \
	mkdir -p $(YOCTO_FILES) && \
	git archive --prefix=cost-agent-$$ver/ -o $(YOCTO_FILES)/cost-agent-$$ver.tar.gz $(REV) && \
	echo "$(YOCTO_FILES)/cost-agent-$$ver.tar.gz ($(REV))"
