"""HD44780 I/O: the I2C (PCF8574) and GPIO buses, and a display that drives one of them.

Everything here blocks (writes, `time.sleep` for the controller's waits): the hd44780 output
runs it in its own worker thread, never on the event loop.

I2C goes through the kernel's i2c-dev interface with the standard library only: open
`/dev/i2c-N`, `ioctl(I2C_SLAVE, address)`, then plain `write()`s (each one I2C message).
GPIO goes through the libgpiod v2 adapter of the `gpio` output (imported on open).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from agent.outputs.gpio_backend import CONSUMER, Backend, Opener, open_gpiod
from agent.outputs.hd44780.bus import GpioLines, PinMap, gpio_steps, pcf8574_chunks, pcf8574_idle
from agent.outputs.hd44780.encode import Hd44780Encoder, Nibble

I2C_SLAVE = 0x0703  # linux/i2c-dev.h: the address of the next reads and writes
# The controller needs 40 ms after its supply rises before the first instruction.
POWER_ON_S = 0.05

Sleep = Callable[[float], None]


class I2cIo(Protocol):
    """The system calls the I2C bus uses (a test passes a fake with the same calls)."""

    def open(self, path: str, flags: int) -> int:
        """Open the adapter device."""

    def ioctl(self, fd: int, request: int, arg: int) -> object:
        """Select the slave address."""

    def write(self, fd: int, data: bytes) -> int:
        """Send `data` as one I2C write message."""

    def close(self, fd: int) -> None:
        """Close the adapter device."""


class OsI2cIo:
    """The real system calls."""

    def open(self, path: str, flags: int) -> int:
        """os.open."""
        return os.open(path, flags)

    def ioctl(self, fd: int, request: int, arg: int) -> object:
        """fcntl.ioctl."""
        return fcntl.ioctl(fd, request, arg)

    def write(self, fd: int, data: bytes) -> int:
        """os.write."""
        return os.write(fd, data)

    def close(self, fd: int) -> None:
        """os.close."""
        os.close(fd)


class Bus(Protocol):
    """The wires between the agent and the controller."""

    def open(self) -> None:
        """Acquire the bus (raises OSError or a driver error)."""

    def send(self, nibbles: Sequence[Nibble], backlight: bool) -> None:
        """Strobe these nibbles in, waiting as each needs, and set the backlight."""

    def close(self) -> None:
        """Release the bus; never raises."""


class I2cBus:
    """A PCF8574 backpack on an i2c-dev adapter."""

    def __init__(self, device: str, address: int, pins: PinMap, *,
                 backlight_active_low: bool = False, io: I2cIo | None = None,
                 sleep: Sleep = time.sleep) -> None:
        self.device, self.address, self.pins = device, address, pins
        self.backlight_active_low = backlight_active_low
        self._io: I2cIo = io or OsI2cIo()
        self._sleep = sleep
        self._fd: int | None = None
        self._level: bool | None = None  # the backlight pin's level last written

    def open(self) -> None:
        """Open the adapter and address the backpack."""
        self.close()
        fd = self._io.open(self.device, os.O_RDWR | os.O_CLOEXEC)
        try:
            self._io.ioctl(fd, I2C_SLAVE, self.address)
        except BaseException:
            self._io.close(fd)
            raise
        self._fd = fd

    def send(self, nibbles: Sequence[Nibble], backlight: bool) -> None:
        """Write the port bytes chunk by chunk, sleeping where the controller needs it."""
        fd = self._fd
        if fd is None:
            raise OSError(errno.EBADF, "i2c device is closed", self.device)
        level = backlight != self.backlight_active_low
        chunks = pcf8574_chunks(nibbles, self.pins, level)
        if not chunks and level != self._level:
            chunks = [(bytes((pcf8574_idle(self.pins, level),)), 0.0)]
        for data, wait in chunks:
            if self._io.write(fd, data) != len(data):
                raise OSError(errno.EIO, f"short write to i2c address 0x{self.address:02x}",
                              self.device)
            if wait:
                self._sleep(wait)
        self._level = level

    def close(self) -> None:
        """Close the adapter device."""
        fd, self._fd = self._fd, None
        self._level = None
        if fd is not None:
            with contextlib.suppress(OSError):
                self._io.close(fd)


class GpioBus:
    """A display wired to GPIO lines in 4-bit mode."""

    def __init__(self, chip: str, lines: GpioLines, *, opener: Opener = open_gpiod,
                 sleep: Sleep = time.sleep) -> None:
        self.chip, self.lines = chip, lines
        self._opener = opener
        self._sleep = sleep
        self._backend: Backend | None = None
        self._level: bool | None = None

    def open(self) -> None:
        """Request the lines as outputs (initially low)."""
        self.close()
        self._backend = self._opener(self.chip, self.lines.offsets(), active_low=False,
                                     consumer=CONSUMER)

    def send(self, nibbles: Sequence[Nibble], backlight: bool) -> None:
        """Set the lines step by step, sleeping after each instruction."""
        backend = self._backend
        if backend is None:
            raise OSError(errno.EBADF, "gpio lines not requested", self.chip)
        for values, wait in gpio_steps(nibbles, self.lines):
            backend.set(values)
            if wait:
                self._sleep(wait)
        if self.lines.backlight is not None and backlight != self._level:
            backend.set({self.lines.backlight: backlight})
            self._level = backlight

    def close(self) -> None:
        """Release the lines."""
        backend, self._backend = self._backend, None
        self._level = None
        if backend is not None:
            backend.release()


class Hd44780Display:
    """One display: the encoder's state plus its bus. Every method blocks."""

    def __init__(self, encoder: Hd44780Encoder, bus: Bus, sleep: Sleep = time.sleep) -> None:
        self.encoder, self.bus = encoder, bus
        self._sleep = sleep

    def open(self) -> None:
        """Acquire the bus; the next show() initialises the controller."""
        self.encoder.invalidate()
        self.bus.open()
        self._sleep(POWER_ON_S)

    def show(self, rows: Sequence[str], backlight: bool) -> None:
        """Rewrite the cells that differ from `rows` (all of it after open)."""
        self._send(self.encoder.update(rows), backlight)

    def repaint(self, rows: Sequence[str], backlight: bool) -> None:
        """Re-initialise the controller and write every cell and glyph."""
        self._send(self.encoder.repaint(rows), backlight)

    def _send(self, nibbles: Sequence[Nibble], backlight: bool) -> None:
        try:
            self.bus.send(nibbles, backlight)
        except BaseException:
            # The controller may hold part of it, even half a nibble pair: start over.
            self.encoder.invalidate()
            raise

    def close(self) -> None:
        """Release the bus; never raises."""
        self.encoder.invalidate()
        with contextlib.suppress(Exception):
            self.bus.close()
