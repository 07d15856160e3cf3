"""GPIO output (`type = "gpio"`): drive GPIO lines from view conditions (lamps, relays, latches).

Conditions, each true or false for a view:

================  ==========================================================================
session_active    a session exists: `session_id` is set and `status` is set (so during
                  charging, idle and finished screens of a session)
charging          screen is "charging" (EVerest status Running)
idle              screen is "idle" (a session that is not drawing power)
finished          screen is "finished"
link_down         the link to EVerest is down (`link == "down"`)
price_available   screen is "price" or "tariff" and there is something to show: price lines,
                  a local price preview, or a non-empty message
unavailable       screen is "unavailable"
================  ==========================================================================

The lines (`[output.lines] condition = offset`) are requested once as outputs on `chip` with
consumer name "cost-agent" (initially inactive), all set on every view change, and driven
inactive before release on stop. Every `refresh_s` (default 30, 0: never) without a view
change all lines are driven again (and the pulse strobed). `active_low` inverts the electrical
level of every line.
`pulse = {line = N, ms = 50}` additionally strobes line N active for `ms` milliseconds after
each update, for displays that latch their inputs on a pulse.

Line access goes through `agent.outputs.gpio_backend` (libgpiod v2, imported on open).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Literal

import msgspec

from agent.lanes import Lane
from agent.model.view import View
from agent.outputs.base import OutputConfig, Unusable
from agent.outputs.gpio_backend import CONSUMER, Backend, Opener, open_gpiod
from agent.structs import Settings

Condition = Literal["session_active", "charging", "idle", "finished", "link_down",
                    "price_available", "unavailable"]
CONDITIONS: tuple[Condition, ...] = ("session_active", "charging", "idle", "finished",
                                     "link_down", "price_available", "unavailable")
Offset = Annotated[int, msgspec.Meta(ge=0, le=65535)]


class Pulse(Settings):
    """`pulse = {line = N, ms = 50}`: strobe line N after each update."""

    line: Offset
    ms: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 50


class GpioConfig(OutputConfig, frozen=True, tag="gpio"):
    """`[[output]] type = "gpio"`; see docs/outputs.md."""

    chip: Annotated[str, msgspec.Meta(min_length=1)] = "/dev/gpiochip0"
    active_low: bool = False
    lines: dict[Condition, Offset] = msgspec.field(default_factory=dict)
    pulse: Pulse | None = None
    # Re-drive every line (and strobe) this often, for a display that lost its latch; 0: off.
    refresh_s: Annotated[float, msgspec.Meta(ge=0)] = 30.0

    def __post_init__(self) -> None:
        if not self.lines and self.pulse is None:
            raise ValueError("lines: map at least one condition to a line offset "
                             f"(conditions: {', '.join(CONDITIONS)})")
        seen: dict[int, str] = {}
        for condition, offset in self.lines.items():
            if offset in seen:
                raise ValueError(f"lines.{condition}: line {offset} is already used by "
                                 f"{seen[offset]}")
            seen[offset] = condition
        if self.pulse is not None and self.pulse.line in seen:
            raise ValueError(f"pulse.line: line {self.pulse.line} is already used by "
                             f"{seen[self.pulse.line]}")

    @property
    def chip_path(self) -> str:
        """The character device path (`gpiochip0` means /dev/gpiochip0)."""
        return self.chip if "/" in self.chip else f"/dev/{self.chip}"


def conditions(view: View) -> dict[Condition, bool]:
    """Every condition's value for this view (see the module docstring)."""
    price_screen = view.screen in ("price", "tariff")
    return {
        "session_active": view.session_id is not None and view.status is not None,
        "charging": view.screen == "charging",
        "idle": view.screen == "idle",
        "finished": view.screen == "finished",
        "link_down": view.link == "down",
        "price_available": price_screen and bool(view.prices or view.preview or view.message),
        "unavailable": view.screen == "unavailable",
    }


class GpioOutput:
    """The Output driving one chip's lines; `opener` is the libgpiod adapter unless a test's."""

    def __init__(self, config: GpioConfig, opener: Opener = open_gpiod) -> None:
        self.config = config
        self._opener = opener
        self._backend: Backend | None = None
        self._lane = Lane("gpio")  # a chip's ioctls, off the loop and apart from the rest
        offsets = list(config.lines.values())
        if config.pulse is not None:
            offsets.append(config.pulse.line)
        self.offsets: tuple[int, ...] = tuple(offsets)

    def values(self, view: View) -> dict[int, bool]:
        """Line offset -> logical value for this view (pulse line not included)."""
        state = conditions(view)
        return {offset: state[condition] for condition, offset in self.config.lines.items()}

    async def open(self) -> None:
        """Request the lines (once per open; a failure raises so the runtime retries)."""
        if self._backend is not None:
            return
        c = self.config
        self._backend = await self._lane.call(
            self._opener, c.chip_path, self.offsets, active_low=c.active_low, consumer=CONSUMER)

    async def show(self, view: View) -> None:
        """Set every mapped line, then strobe the pulse line if configured."""
        backend = self._backend
        if backend is None:
            raise RuntimeError(f"gpio {self.config.chip_path}: lines not requested")
        values = self.values(view)
        if values:
            await self._lane.call(backend.set, values)
        pulse = self.config.pulse
        if pulse is not None:
            await self._lane.call(backend.set, {pulse.line: True})
            try:
                await asyncio.sleep(pulse.ms / 1000)
            finally:
                await self._lane.call(backend.set, {pulse.line: False})

    async def repaint(self, view: View) -> None:
        """Drive every line again (and strobe), as show() does."""
        await self.show(view)

    async def close(self) -> None:
        """Drive every line inactive, then release them; never raises."""
        backend, self._backend = self._backend, None
        if backend is None:
            return

        def stop() -> None:
            with contextlib.suppress(Exception):
                backend.set(dict.fromkeys(self.offsets, False))
            with contextlib.suppress(Exception):
                backend.release()
        await self._lane.call(stop)


CONFIG = GpioConfig


def preflight(config: OutputConfig) -> None:
    """libgpiod's Python binding (v2) is installed."""
    from agent.outputs.gpio_backend import check_gpiod

    try:
        check_gpiod()
    except RuntimeError as exc:
        raise Unusable("type", str(exc)) from None


def create(config: GpioConfig) -> GpioOutput:
    """Build the output from its validated config (libgpiod is imported on open)."""
    return GpioOutput(config)
