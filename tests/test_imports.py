"""Import only what the configuration uses: a plain config loads no plugin or HTML machinery."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = """
import sys
from agent.config import load
from agent.runtime import Agent
from agent.text import choose
from agent.messages import MessageContent
load(sys.argv[1])
print(choose([MessageContent(content="plain text")], ("en",)).text)
print(" ".join(m for m in sys.argv[2:] if m in sys.modules))
"""
UNUSED = ["importlib.metadata", "email", "zipfile", "html.parser", "gpiod", "http.client",
          "agent.pricing.client"]


def test_plain_config_imports_no_plugin_lookup_or_html_parser(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(f'[status]\npath = "{tmp_path}/status.json"\n[state]\ndir = "{tmp_path}"\n'
                      f'[[output]]\ntype = "file"\npath = "{tmp_path}/view.json"\n')
    result = subprocess.run([sys.executable, "-c", CHILD, str(config), *UNUSED],
                            capture_output=True, text=True, cwd=REPO, check=True, timeout=60)
    assert result.stdout.splitlines() == ["plain text", ""]
