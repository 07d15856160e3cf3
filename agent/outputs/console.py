"""`console` output: a framed rendering of the view on a terminal, like a character LCD.

When the view has a `qr_code` (the receipt on the finished screen), or else a `payment_url`
(the connector's ad-hoc payment, price screen), the code is drawn under the frame in Unicode
half blocks (agent.outputs.qrblock; needs the `qr` extra, else only the URL's text row in the
frame shows it).
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Literal

from msgspec import Meta

from agent.lanes import Lane
from agent.model.view import View, energy_kwh_text, power_kw_text
from agent.outputs.base import OutputConfig
from agent.outputs.lineproto import layout
from agent.outputs.qrblock import Colors, draw

_TITLES = {"price": "PRICE", "tariff": "YOUR TARIFF", "charging": "CHARGING", "idle": "IDLE",
           "finished": "THANK YOU", "unavailable": "UNAVAILABLE"}


class ConsoleConfig(OutputConfig, tag="console", frozen=True):
    """`[[output]] type = "console"`: what the demo shows."""

    width: Annotated[int, Meta(ge=8, le=200)] = 20
    lines: Annotated[int, Meta(ge=2, le=50)] = 4
    stream: str = "stdout"
    # Which QR modules the characters draw: the light ones on a dark terminal, or "off".
    qr: Literal["light-on-dark", "dark-on-light", "off"] = "light-on-dark"


CONFIG = ConsoleConfig


def _body(view: View) -> list[str]:
    rows: list[str] = []
    shown = view.display_message
    if shown is not None and shown.text:
        rows.append(shown.text)  # the backend's message first: it is what matters now
    if view.total is not None:
        stale = " (stale)" if view.stale else ""
        unconfirmed = " (not final)" if view.final is False else ""
        rows.append(view.total.text + stale + unconfirmed)
    if view.live_total is not None:
        rows.append(view.live_total.text)
    if view.energy_wh is not None:
        power = power_kw_text(view)
        rows.append(energy_kwh_text(view) + (f" {power}" if power else ""))
    if view.estimate is not None:
        rows.append(f"est. {view.estimate.text}")
    if view.screen in ("charging", "idle"):
        rows.extend(view.prices)
        if view.screen == "idle" and view.idle_price:
            rows.append(f"idle {view.idle_price}")
    if view.message:
        rows.append(view.message)
    if view.screen in ("price", "tariff"):
        rows.extend(view.preview)
    code = _code(view)
    if code:
        rows.append(f"QR {code}")
    return rows


def _code(view: View) -> str | None:
    """The QR code to draw: the backend message's, else the receipt's, else the payment URL."""
    shown = view.display_message
    return (shown.qr_code if shown is not None else None) or view.qr_code or view.payment_url


def render(view: View, width: int = 20, lines: int = 4,
           qr: Colors | Literal["off"] = "light-on-dark") -> str:
    """The framed text block for `view` (a title row, then `lines` rows), then its QR code."""
    title = _TITLES[view.screen] + ("" if view.link == "up" else " !")
    body = layout("\n".join(_body(view)), width, lines, pad=True)
    top = "+" + f" {title} ".center(width, "-")[:width] + "+"
    rows = [top] + [f"|{row}|" for row in body] + ["+" + "-" * width + "+"]
    code = _code(view)
    if code and qr != "off":
        rows.extend(draw(code, qr) or ())
    return "\n".join(rows) + "\n"


class ConsoleOutput:
    """Prints each changed view as a frame on stdout or stderr."""

    def __init__(self, config: ConsoleConfig) -> None:
        self.config = config
        self._last = ""
        # A terminal write can block for good (a paused pager, a full pipe, a stalled
        # journald): in a thread of this output's own, so only this output waits.
        self._lane = Lane("console")

    async def open(self) -> None:
        """Nothing to acquire."""
        self._last = ""

    async def show(self, view: View) -> None:
        """Print the frame when it differs from the last one printed."""
        frame = render(view, self.config.width, self.config.lines, self.config.qr)
        if frame == self._last:
            return
        stream = sys.stderr if self.config.stream == "stderr" else sys.stdout
        # Straight to the descriptor, not through the stream's buffer: a write stuck in a
        # thread would hold the buffer's lock, and the interpreter's last flush at exit with it.
        await self._lane.call(_write, stream.fileno(), frame.encode())
        self._last = frame

    async def close(self) -> None:
        """Nothing to release."""


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def create(config: OutputConfig) -> ConsoleOutput:
    """Build the output from its validated table."""
    assert isinstance(config, ConsoleConfig)
    return ConsoleOutput(config)
