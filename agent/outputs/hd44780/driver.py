"""`type = "hd44780"`: a character LCD on the board's own I2C bus (PCF8574) or GPIO lines.

The text is the serial line protocol's (same template, placeholders and wrapping), mapped to
the display's character ROM; only changed cells are rewritten. Each display has its own
worker thread for the bus and the controller's waits, so nothing blocks the event loop.
See docs/outputs.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Literal

import msgspec

from agent.model.view import View
from agent.outputs.base import OutputConfig
from agent.outputs.gpio_backend import Opener, open_gpiod
from agent.outputs.hd44780.bus import DEFAULT_PINS, GpioLines, PinMap
from agent.outputs.hd44780.device import Bus, GpioBus, Hd44780Display, I2cBus, I2cIo, Sleep
from agent.outputs.hd44780.encode import Hd44780Encoder, check_geometry, screen_rows
from agent.outputs.hd44780.rom import Rom
from agent.outputs.lineproto import check_template

DEFAULT_TEMPLATE = "{total}\n{energy_kwh}\n{prices}\n{message}"
SESSION_SCREENS = frozenset({"charging", "idle", "finished"})


class Hd44780Config(OutputConfig, frozen=True, tag="hd44780"):
    """`[[output]] type = "hd44780"`; see docs/outputs.md."""

    bus: Literal["i2c", "gpio"] = "i2c"
    columns: int = 20
    rows: int = 4
    rom: Rom = "A00"
    template: str = DEFAULT_TEMPLATE
    separator: str = "\n"
    backlight: Literal["always", "session"] = "always"
    refresh_s: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    # bus = "i2c"
    device: Annotated[str, msgspec.Meta(min_length=1)] = "/dev/i2c-1"
    address: int = 0x27
    pins: PinMap = DEFAULT_PINS
    backlight_active_low: bool = False
    # bus = "gpio"
    chip: Annotated[str, msgspec.Meta(min_length=1)] = "/dev/gpiochip0"
    lines: GpioLines | None = None

    def __post_init__(self) -> None:
        check_geometry(self.columns, self.rows)
        check_template(self.template)
        if self.bus == "i2c":
            if not 0x03 <= self.address <= 0x77:
                raise ValueError(f"address: {self.address:#x} is not a 7-bit I2C device "
                                 "address (0x03..0x77; a PCF8574 is 0x20..0x27, "
                                 "a PCF8574A 0x38..0x3f)")
            self.pins.check()
            if self.lines is not None:
                raise ValueError('lines: only for bus = "gpio" (i2c uses pins)')
            return
        if self.lines is None:
            raise ValueError('lines: bus = "gpio" needs lines = {rs, e, d4, d5, d6, d7}')
        self.lines.check()
        i2c_keys = {"device": self.device != "/dev/i2c-1", "address": self.address != 0x27,
                    "pins": self.pins != DEFAULT_PINS,
                    "backlight_active_low": self.backlight_active_low}
        for key, is_set in i2c_keys.items():
            if is_set:
                raise ValueError(f'{key}: only for bus = "i2c"')
        if self.backlight == "session" and self.lines.backlight is None:
            raise ValueError('backlight: "session" needs lines.backlight on the gpio bus')

    @property
    def chip_path(self) -> str:
        """The GPIO character device path (`gpiochip0` means /dev/gpiochip0)."""
        return self.chip if "/" in self.chip else f"/dev/{self.chip}"


class Hd44780Output:
    """The Output (and Repaintable) for one display; `i2c_io`/`gpio_opener` are for tests."""

    def __init__(self, config: Hd44780Config, *, i2c_io: I2cIo | None = None,
                 gpio_opener: Opener = open_gpiod, sleep: Sleep = time.sleep) -> None:
        self.config = c = config
        bus: Bus
        if c.bus == "gpio":
            assert c.lines is not None
            bus = GpioBus(c.chip_path, c.lines, opener=gpio_opener, sleep=sleep)
        else:
            bus = I2cBus(c.device, c.address, c.pins, io=i2c_io, sleep=sleep,
                         backlight_active_low=c.backlight_active_low)
        self.display = Hd44780Display(Hd44780Encoder(c.columns, c.rows, c.rom), bus, sleep)
        self._executor: ThreadPoolExecutor | None = None

    async def _run(self, call: Callable[[], None]) -> None:
        # One thread per display keeps its instructions in order and its waits off the loop.
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hd44780")
        await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def rows(self, view: View) -> list[str]:
        """The display rows for this view."""
        c = self.config
        return screen_rows(view, c.template, c.columns, c.rows, c.rom, c.separator)

    def backlight(self, view: View) -> bool:
        """Whether the backlight is on for this view."""
        return self.config.backlight == "always" or view.screen in SESSION_SCREENS

    async def open(self) -> None:
        """Acquire the bus; the next show() initialises the controller."""
        await self._run(self.display.open)

    async def show(self, view: View) -> None:
        """Rewrite the cells that changed (everything after open or a failure)."""
        rows, light = self.rows(view), self.backlight(view)
        await self._run(lambda: self.display.show(rows, light))

    async def repaint(self, view: View) -> None:
        """Re-initialise the controller (it may have been power-cycled) and write it all."""
        rows, light = self.rows(view), self.backlight(view)
        await self._run(lambda: self.display.repaint(rows, light))

    async def close(self) -> None:
        """Release the bus and the worker thread; never raises."""
        executor, self._executor = self._executor, None
        if executor is None:
            self.display.close()
            return
        with contextlib.suppress(Exception):
            await asyncio.get_running_loop().run_in_executor(executor, self.display.close)
        executor.shutdown(wait=False)


CONFIG = Hd44780Config


def preflight(config: OutputConfig) -> None:
    """On GPIO, libgpiod's Python binding (v2) is installed (I2C needs nothing more)."""
    assert isinstance(config, Hd44780Config)
    if config.bus == "gpio":
        from agent.outputs.gpio import preflight as gpio_preflight

        gpio_preflight(config)


def create(config: Hd44780Config) -> Hd44780Output:
    """Build the output from its validated config (nothing is opened yet)."""
    return Hd44780Output(config)
