"""The console script routes `price` to the pricing CLI with its own arguments."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "pricing" / "example2_rate_chf.json"


def test_price_subcommand_through_the_main_cli() -> None:
    for prefix in ([], ["--log-level", "debug"]):
        result = subprocess.run(
            [sys.executable, "-m", "agent", *prefix, "price", "--structure", str(FIXTURE),
             "--consumption", "80000", "--json"],
            capture_output=True, text=True, cwd=REPO, check=False, timeout=60)
        assert result.returncode == 0, result.stderr
        doc = json.loads(result.stdout, parse_float=str, parse_int=str)
        assert (doc["costTotal"], doc["costTotalLocalCurrency"]) == ("52", "48.863")


def test_price_subcommand_bad_input_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"energy": {"unit": "Wh", "elements": [{"intervalChange": 5, '
                   '"intervalCosts": "cheap"}]}}')
    result = subprocess.run([sys.executable, "-m", "agent", "price", "--structure", str(bad),
                             "--consumption", "10"], capture_output=True, text=True, cwd=REPO,
                            check=False, timeout=60)
    assert result.returncode == 2
    assert "elements[0]" in result.stderr
