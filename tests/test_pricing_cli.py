"""`cost-agent price`: readable and JSON output, exit 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from agent.pricing.cli import main

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "pricing"
EX1 = str(FIXTURES / "example1_rate.json")
EX2 = str(FIXTURES / "example2_rate_chf.json")
FEE = str(FIXTURES / "energy_time_fee.json")


def _json(text: str) -> Any:
    return json.loads(text, parse_float=Decimal, parse_int=Decimal)


def test_readable_breakdown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--structure", EX1, "--consumption", "90000", "--duration", "1000"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "Tariff: Standard-Verkaufstarif eMSP [EUR]"
    assert any("[1] 100-101 Wh" in line and "40.4 EUR/kWh" in line
               and line.endswith("step 0.0404") for line in lines)
    assert any("[3] 102 Wh and up" in line and line.endswith("step 35.9592") for line in lines)
    assert "Time: no elements" in lines
    assert any(line.split() == ["costTotal", "36", "EUR"] for line in lines)
    assert any(line.split() == ["costTotalLocalCurrency", "36", "EUR"] for line in lines)


def test_json_document_example_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--structure", EX2, "--consumption", "80000", "--duration", "1",
                 "--json"]) == 0
    text = capsys.readouterr().out
    out = _json(text)
    assert (out["currency"], out["localCurrency"]) == ("CHF", "EUR")
    assert out["currencyConversionRate"] == Decimal("1.0642")
    assert out["costPower"] == out["costTotal"] == Decimal(52)
    assert out["costTime"] == out["costSessionFee"] == 0
    assert out["costTotalLocalCurrency"] == Decimal("48.863")
    steps = [e["stepCosts"] for e in out["priceStructure"]["energy"]["elements"]]
    assert steps == [0, Decimal("0.06565"), Decimal("51.93435")]
    assert '"costTotalLocalCurrency":48.863,' in text  # exact text, no float artifacts
    assert '"stepCosts":51.93435,' in text


def test_duration_minutes_equals_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--structure", FEE, "--consumption", "12345", "--duration-minutes",
                 "121.5", "--json"]) == 0
    minutes = _json(capsys.readouterr().out)
    assert main(["--structure", FEE, "--consumption", "12345", "--duration", "7290",
                 "--json"]) == 0
    seconds = _json(capsys.readouterr().out)
    assert minutes == seconds
    assert minutes["costTime"] == Decimal("6.15")
    assert minutes["costSessionFee"] == Decimal("1.5")
    assert minutes["costTotal"] == Decimal("12.8349")
    assert minutes["sessionFeeGracePeriod"] == 180


def test_session_fee_shown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--structure", FEE, "--consumption", "100", "--duration", "60"]) == 0
    out = capsys.readouterr().out
    assert "Session fee: 1.5 EUR (waived under 180 s or below 200 Wh)" in out
    assert any(line.split() == ["costSessionFee", "0", "EUR"] for line in out.splitlines())


def test_no_calculation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--structure", str(FIXTURES / "bare_structure.json")]) == 0
    assert "nothing calculated" in capsys.readouterr().out
    assert main(["--structure", EX1, "--json"]) == 0
    out = _json(capsys.readouterr().out)
    assert out["costTotal"] is None
    assert all(e["stepCosts"] is None for e in out["priceStructure"]["energy"]["elements"])


def test_empty_structure_fine_without_calculation(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.json"
    path.write_text('{"energy": {"unit": "Wh", "elements": []}}')
    assert main(["--structure", str(path)]) == 0
    assert main(["--structure", str(path), "--consumption", "10"]) == 2
    assert "priceStructure: no elements" in capsys.readouterr().err


BAD_DESC = ('{"energy": {"unit": "Wh", "elements": [{"intervalChange": 100, '
            '"intervalCosts": 0}, {"intervalChange": 101, "intervalCosts": 1}, '
            '{"intervalChange": 101, "intervalCosts": 1}]}}')


@pytest.mark.parametrize(("content", "args", "message"), [
    (None, ["--structure", "/nonexistent/tariff.json"], "cannot read /nonexistent"),
    (BAD_DESC, [], "priceStructure.energy.elements[2].intervalChange: must be greater than"),
    ('{"energy": {"unit": "Wh", "elements": [{"intervalChange": "x", "intervalCosts": 1}]}}',
     [], "elements[0].intervalChange: Invalid decimal string"),
    ('{"energy": {"unit": "kWh", "elements": []}}', [], "expected 'Wh'"),
    ("{oops", [], "invalid JSON"),
    ("{}", ["--consumption", "-5"], "--consumption: must be a finite number"),
    ("{}", ["--consumption", "abc"], "--consumption: not a number"),
    ("{}", ["--consumption", "NaN"], "--consumption: must be a finite number"),
    ("{}", ["--duration", "1", "--duration-minutes", "1"], "not allowed with"),
    (None, [], "--structure"),
])
def test_bad_input_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                          content: str | None, args: list[str], message: str) -> None:
    if content is not None:
        path = tmp_path / "tariff.json"
        path.write_text(content)
        args = ["--structure", str(path), *args]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err
    assert "Traceback" not in captured.err


def test_help_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "--duration-minutes" in capsys.readouterr().out


def test_subprocess() -> None:
    code = "import sys; from agent.pricing.cli import main; sys.exit(main(sys.argv[1:]))"
    ok = subprocess.run([sys.executable, "-c", code, "--structure", EX1, "--consumption",
                         "90000", "--json"], capture_output=True, text=True, check=False,
                        cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert _json(ok.stdout)["costTotal"] == 36
    bad = subprocess.run([sys.executable, "-c", code, "--structure", EX1, "--consumption",
                          "-1"], capture_output=True, text=True, check=False, cwd=ROOT)
    assert bad.returncode == 2
    assert "cost-agent price: error:" in bad.stderr
