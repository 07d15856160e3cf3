"""The demo (the README's first command) plays a whole session and exits 0."""

from __future__ import annotations

import subprocess
import sys
import time
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


def test_station_demo_two_connectors_side_by_side(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "agent", "demo", "--evses", "2", "--step",
                             "0.6"], capture_output=True, text=True, cwd=REPO, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "EVSE 1" in out and "EVSE 2" in out
    charging_side_by_side = [line for line in out.splitlines()
                             if line.count(" CHARGING ") == 2]
    assert charging_side_by_side, "both connectors charging at once"
    assert "≈ " in out                      # the live total between backend updates
    assert " kW " in out                    # live power
    assert "(not final)" in out             # one session ended without a final cost
    assert "1 final receipt(s), 1 without final cost" in out
    # The CSMS's display message (EVerest's display_message API) in turn with the screens.
    assert "the CSMS's display message accepted" in out
    assert "|Solar power from the roof" in out
    end = out[out.rindex("receipt of EVSE"):out.rindex("\ndemo: ")]
    code = [line for line in end.split("\n")[1:] if line.strip()]
    assert code and all(set(line) <= set("█▀▄ ") for line in code)
    if ZBARIMG is not None:
        url = scan(to_pgm(code, ink_is_light=True), tmp_path)
        assert url.startswith("https://receipts.example.com/")


def test_station_demo_serves_the_web_display_and_prints_its_address() -> None:
    import json
    import urllib.request

    proc = subprocess.Popen([sys.executable, "-m", "agent", "demo", "--evses", "2", "--step",
                             "0.6"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, cwd=REPO)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("demo: web display on http://127.0.0.1:"), first
        url = first.split()[4]
        views: list[dict[str, object]] = []
        for _ in range(100):
            try:
                with urllib.request.urlopen(url + "views.json", timeout=5) as reply:
                    views = json.loads(reply.read())
                if len(views) == 2:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        assert [v["evse"] for v in views] == [1, 2]
        with urllib.request.urlopen(url, timeout=5) as reply:
            assert b"/static/app.js" in reply.read()
        proc.stdout.read()
        assert proc.wait(timeout=120) == 0
    finally:
        proc.kill()
        proc.wait()
