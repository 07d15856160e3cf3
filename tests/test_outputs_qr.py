"""The console's QR code scans: its half blocks, drawn as an image, decode with zbar."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from agent.model.view import Total, View
from agent.outputs import qrblock
from agent.outputs.console import ConsoleConfig, ConsoleOutput, render

ZBARIMG = shutil.which("zbarimg")
needs_zbar = pytest.mark.skipif(
    ZBARIMG is None, reason="zbarimg (Debian zbar-tools) is not installed; "
    "scripts/setup.sh installs it")

SHORT = "https://receipts.example.com/r/8F3A2C"
LONG = "https://receipts.example.com/r/" + "".join(
    f"{i:02x}" for i in range(200))[:200 - len("https://receipts.example.com/r/")]
TOP = {" ": (False, False), "▀": (True, False), "▄": (False, True), "█": (True, True)}


def finished(url: str) -> View:
    return View(screen="finished", link="up", session_id="s", status="Finished",
                total=Total(1234, 2, "EUR", "12,34 €"), energy_wh=5123, qr_code=url)


def qr_lines(screen: str) -> list[str]:
    """The lines under the console frame (the frame ends at its second `+---` line)."""
    lines = screen.rstrip("\n").split("\n")
    bottom = max(i for i, line in enumerate(lines) if line.startswith("+-"))
    return lines[bottom + 1:]


def to_pgm(lines: Sequence[str], ink_is_light: bool, scale: int = 6) -> bytes:
    """The block as a greyscale image: each character is one module wide and two high."""
    ink, paper = (255, 0) if ink_is_light else (0, 255)
    width = max(len(line) for line in lines)
    rows: list[bytes] = []
    for line in lines:
        halves = [TOP[ch] for ch in line.ljust(width)]
        for half in (0, 1):
            row = bytes(b for top_bottom in halves
                        for b in [ink if top_bottom[half] else paper] * scale)
            rows.extend([row] * scale)
    return b"P5\n%d %d\n255\n" % (width * scale, len(rows)) + b"".join(rows)


def scan(image: bytes, tmp_path: Path) -> str:
    path = tmp_path / "qr.pgm"
    path.write_bytes(image)
    assert ZBARIMG is not None
    result = subprocess.run([ZBARIMG, "--raw", "-q", "-Sdisable", "-Sqrcode.enable", str(path)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"zbarimg found no code: {result.stderr}"
    return result.stdout.rstrip("\n")


def test_long_url_is_200_characters() -> None:
    assert len(LONG) == 200


@needs_zbar
@pytest.mark.parametrize("url", [SHORT, LONG], ids=["short", "long"])
@pytest.mark.parametrize("colors", ["light-on-dark", "dark-on-light"])
def test_the_drawn_code_scans_back_to_the_url(url: str, colors: qrblock.Colors,
                                              tmp_path: Path) -> None:
    block = qr_lines(render(finished(url), 30, 5, colors))
    assert len({len(line) for line in block}) == 1  # a rectangle
    assert scan(to_pgm(block, ink_is_light=colors == "light-on-dark"), tmp_path) == url


@needs_zbar
def test_drawn_with_the_wrong_colours_it_does_not_scan(tmp_path: Path) -> None:
    block = qr_lines(render(finished(SHORT), 30, 5, "light-on-dark"))
    path = tmp_path / "qr.pgm"
    path.write_bytes(to_pgm(block, ink_is_light=False))
    assert ZBARIMG is not None
    result = subprocess.run([ZBARIMG, "--raw", "-q", str(path)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert SHORT not in result.stdout


def test_the_block_has_a_quiet_zone_of_four_modules() -> None:
    block = qr_lines(render(finished(SHORT), 30, 5, "dark-on-light"))
    assert block[0].strip() == block[1].strip() == ""  # four light module rows above
    assert all(line[:4] == "    " and line[-4:] == "    " for line in block)
    assert block[2][4:].startswith("█▀▀▀▀▀█")  # the finder pattern starts right after


def test_no_code_without_a_qr_code_or_when_off() -> None:
    for view, qr in ((View(screen="price", link="up", prices=["0,35 €/kWh"]), "light-on-dark"),
                     (finished(SHORT), "off")):
        assert qr_lines(render(view, 30, 5, qr)) == []  # type: ignore[arg-type]
    assert any("█" in line for line in qr_lines(render(finished(SHORT), 30, 5)))


def test_without_segno_the_url_is_text_and_the_log_says_so_once(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "segno", None)  # import segno -> ImportError
    monkeypatch.setattr(qrblock, "_missing_logged", False)
    qrblock.draw.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="agent.outputs.qrblock"):
            first = render(finished(SHORT), 40, 5)
            render(finished(SHORT + "?2"), 40, 5)
    finally:
        qrblock.draw.cache_clear()
    assert qr_lines(first) == []
    assert f"QR {SHORT}" in first
    assert len(caplog.records) == 1
    assert "cost-agent[qr]" in caplog.records[0].message


@needs_zbar
def test_console_output_prints_a_scannable_code_under_the_total(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    async def run() -> None:
        out = ConsoleOutput(ConsoleConfig(width=30, lines=5))
        await out.open()
        await out.show(finished(SHORT))
        await out.close()
    asyncio.run(run())
    printed = capfd.readouterr().out
    assert printed.index("12,34 €") < printed.index("█")
    assert scan(to_pgm(qr_lines(printed), ink_is_light=True), tmp_path) == SHORT
