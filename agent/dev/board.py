"""The demo's station board: every EVSE's display side by side on the terminal, and a receipt's
QR code drawn under them (with the console output's renderer)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from agent.core.display import Display
from agent.lanes import Lane
from agent.model.view import View
from agent.outputs.console import render
from agent.outputs.qrblock import draw

GAP = "   "
PRINT_EVERY_S = 1.0


def side_by_side(frames: Sequence[str], gap: str = GAP) -> str:
    """Text blocks next to each other, top-aligned."""
    columns = [frame.rstrip("\n").split("\n") for frame in frames]
    width = [max(len(row) for row in col) for col in columns]
    height = max(len(col) for col in columns)
    rows = []
    for i in range(height):
        cells = [(col[i] if i < len(col) else "").ljust(w) for col, w in zip(columns, width,
                                                                         strict=True)]
        rows.append(gap.join(cells).rstrip())
    return "\n".join(rows) + "\n"


def board(views: Sequence[View | None], width: int, lines: int) -> str:
    """The frames of all displays, titled with their EVSE, and the newest receipt's QR code."""
    frames = []
    for index, view in enumerate(views, 1):
        title = f"EVSE {view.evse if view and view.evse else index}"
        body = render(view, width, lines, qr="off") if view else ""
        frames.append(f"{title}\n{body}")
    text = side_by_side(frames)
    receipts = [v for v in views if v is not None and v.qr_code and v.screen == "finished"]
    if receipts:
        receipt = receipts[-1]
        qr: tuple[str, ...] = draw(receipt.qr_code or "", "light-on-dark") or ()
        text += f"receipt of EVSE {receipt.evse}: {receipt.qr_code}\n" + "\n".join(qr) + "\n"
    return text


async def show(displays: Sequence[Display], width: int = 26, lines: int = 5) -> None:
    """Print the board when a screen changes, and at most every second otherwise; on a
    terminal, redraw it in place at every change instead."""
    loop = asyncio.get_running_loop()
    in_place = sys.stdout.isatty()
    lane = Lane("board")
    last_text, last_at = "", 0.0
    last_screens: tuple[str | None, ...] = ()
    while True:
        views = [d.view for d in displays]
        screens = tuple(v.screen if v else None for v in views)
        text = board(views, width, lines)
        now = loop.time()
        if text != last_text and (in_place or screens != last_screens
                                  or now - last_at >= PRINT_EVERY_S):
            up = last_text.count("\n") + 1 if in_place and last_text else 0
            await lane.call(_print, text, up)
            last_text, last_screens, last_at = text, screens, now
        await asyncio.sleep(0.2)


def _print(text: str, up: int = 0) -> None:
    if up:
        sys.stdout.write(f"\x1b[{up}F\x1b[J")  # back to the board's first line, clear below
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
