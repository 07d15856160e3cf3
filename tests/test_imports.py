"""Import only what the configuration uses: a plain config loads no plugin or HTML machinery."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = """
import sys
from agent.settings.config import load
from agent.process.runtime import Agent
from agent.model.text import choose
from agent.everest.session_cost import MessageContent
load(sys.argv[1])
print(choose([MessageContent(content="plain text")], ("en",)).text)
print(" ".join(m for m in sys.argv[2:] if m in sys.modules))
"""
UNUSED = ["importlib.metadata", "email", "zipfile", "html.parser", "gpiod", "http.client",
          "agent.pricing.client", "h11", "segno", "agent.outputs.web", "importlib.resources"]


def test_plain_config_imports_no_plugin_lookup_or_html_parser(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(f'[status]\npath = "{tmp_path}/status.json"\n[state]\ndir = "{tmp_path}"\n'
                      f'[[output]]\ntype = "file"\npath = "{tmp_path}/view.json"\n')
    result = subprocess.run([sys.executable, "-c", CHILD, str(config), *UNUSED],
                            capture_output=True, text=True, cwd=REPO, check=True, timeout=60)
    assert result.stdout.splitlines() == ["plain text", ""]


RUN_CHILD = """
import sys
from agent import cli
from agent.outputs import file
from agent.process.runtime import Agent
assert cli.split_global(["--log-level", "debug", "run", "--config=x.toml"])[1] == "run"
assert cli.run_config(["--config=x.toml"]) == "x.toml"
print(" ".join(m for m in sys.argv[1:] if m in sys.modules))
"""
# What `cost-agent run` does without: argparse (only for the other subcommands and errors), and
# tempfile with what it pulls in (random, shutil, bz2, lzma): ~1.2 MB of RSS together.
RUN_UNUSED = ["argparse", "tempfile", "random", "shutil", "bz2", "lzma"]


def test_run_path_imports_no_argparse_or_tempfile() -> None:
    result = subprocess.run([sys.executable, "-c", RUN_CHILD, *RUN_UNUSED],
                            capture_output=True, text=True, cwd=REPO, check=True, timeout=60)
    assert result.stdout.split() == []


WEB_CHILD = """
import sys
from agent.settings.config import load
from agent.settings.preflight import check
from agent.process.runtime import Agent
from agent.outputs.registry import load_kind
config = load(sys.argv[1])
check(config)
load_kind("web").create(config.output[0])
from agent.outputs.web.qr import svg
assert svg("https://example.com/r/1").startswith(b"<svg")
print(" ".join(m for m in sys.argv[2:] if m in sys.modules))
"""


def test_a_web_output_draws_its_codes_without_segnos_writers(tmp_path: Path) -> None:
    """segno's package imports urllib.request, http.client and email (3.5 MiB); the web output
    uses segno's encoder alone, and h11."""
    config = tmp_path / "agent.toml"
    config.write_text(f'[status]\npath = "{tmp_path}/status.json"\n[state]\ndir = "{tmp_path}"\n'
                      '[[output]]\ntype = "web"\n')
    modules = ["h11", "segno", "urllib.request", "http.client", "email", "xml.sax",
               "importlib.resources"]
    result = subprocess.run([sys.executable, "-c", WEB_CHILD, str(config), *modules],
                            capture_output=True, text=True, cwd=REPO, check=True, timeout=60)
    assert result.stdout.split() == ["h11"]
