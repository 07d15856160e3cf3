"""The demo (the README's first command) plays a whole session and exits 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.test_outputs_qr import ZBARIMG, qr_lines, scan, to_pgm

REPO = Path(__file__).resolve().parent.parent


def test_demo_runs_a_session_end_to_end(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "agent", "demo", "--step", "0.3"],
                            capture_output=True, text=True, cwd=REPO, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    for title in ("PRICE", "YOUR TARIFF", "CHARGING", "IDLE", "THANK YOU"):
        assert f" {title} " in result.stdout
    assert "https://receipts.example.com" in result.stdout.replace("|\n|", "")
    assert "no false at stop" in result.stdout
    # It ends on the receipt's QR code, drawn under the THANK YOU frame, and the code scans.
    end = result.stdout[result.stdout.rindex(" THANK YOU "):result.stdout.rindex("\ndemo: ")]
    assert "█" in end
    if ZBARIMG is not None:
        url = scan(to_pgm(qr_lines(end), ink_is_light=True), tmp_path)
        assert url.startswith("https://receipts.example.com/")


def test_demo_serial_pty_shows_what_the_display_receives() -> None:
    result = subprocess.run([sys.executable, "-m", "agent", "demo", "--step", "0.3",
                             "--serial-pty"],
                            capture_output=True, text=True, cwd=REPO, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    serial = [line for line in result.stderr.splitlines() if line.startswith("serial> ")]
    assert any("charging" in line for line in serial)
    assert any("finished" in line and "EUR" in line for line in serial)
