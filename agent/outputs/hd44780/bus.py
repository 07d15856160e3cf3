"""HD44780 nibbles -> what the wires carry: PCF8574 port bytes, or GPIO line levels.

Pure (no I/O). Each nibble becomes three steps: data and RS set with E low (setup), E high,
E low (the controller latches on the falling edge). RW is always low (write only; the busy
flag is never read, the waits are timed instead).

PCF8574 (I2C): the port byte's bits are the pins P0-P7; the pin map says which pin drives
what. Bytes are grouped into chunks written in one go; a chunk ends where the controller
needs a longer wait than the bus itself takes: the PCF8574 runs at up to 100 kHz, so the
next E rise comes at least two bytes (180 us) after the last E fall, more than the 37 us an
instruction needs (still 45 us when a bus is clocked at 400 kHz).

GPIO: `{offset: level}` dicts, each one `set()` call of the line backend, followed by the
wait in seconds (every instruction waits: a line write takes far less than 37 us).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

import msgspec

from agent.outputs.hd44780.encode import EXEC_US, Nibble
from agent.structs import Settings

Pin = Annotated[int, msgspec.Meta(ge=0, le=7)]
Offset = Annotated[int, msgspec.Meta(ge=0, le=65535)]
# i2c-dev refuses a write over 8192 bytes; stay well below, at a nibble boundary.
MAX_CHUNK = 3 * 1024


class PinMap(Settings):
    """Which PCF8574 pin (0-7) drives which LCD signal."""

    rs: Pin
    rw: Pin
    e: Pin
    backlight: Pin
    d4: Pin
    d5: Pin
    d6: Pin
    d7: Pin

    def check(self) -> None:
        """Raise ValueError when two signals share a pin."""
        seen: dict[int, str] = {}
        for name in self.__struct_fields__:
            pin = getattr(self, name)
            if pin in seen:
                raise ValueError(f"pins: P{pin} is used by both {seen[pin]} and {name}")
            seen[pin] = name


# Most backpacks; the other common one (P0-P3 D4-D7, P4 E, P5 RW, P6 RS, P7 backlight) is
# in docs/outputs.md.
DEFAULT_PINS = PinMap(rs=0, rw=1, e=2, backlight=3, d4=4, d5=5, d6=6, d7=7)


class GpioLines(Settings):
    """The GPIO line offsets of a display wired in 4-bit mode (RW tied to ground)."""

    rs: Offset
    e: Offset
    d4: Offset
    d5: Offset
    d6: Offset
    d7: Offset
    backlight: Offset | None = None

    def check(self) -> None:
        """Raise ValueError when two signals share a line."""
        seen: dict[int, str] = {}
        for name in self.__struct_fields__:
            offset = getattr(self, name)
            if offset is None:
                continue
            if offset in seen:
                raise ValueError(f"lines: line {offset} is used by both {seen[offset]} "
                                 f"and {name}")
            seen[offset] = name

    def offsets(self) -> tuple[int, ...]:
        """Every configured line, in field order."""
        return tuple(o for o in (getattr(self, n) for n in self.__struct_fields__)
                     if o is not None)


def pcf8574_idle(pins: PinMap, backlight: bool) -> int:
    """The port byte with E, RS and the data pins low and the backlight pin as given."""
    return 1 << pins.backlight if backlight else 0


def pcf8574_chunks(nibbles: Iterable[Nibble], pins: PinMap,
                   backlight: bool) -> list[tuple[bytes, float]]:
    """(bytes to write in one go, seconds to wait after them) for these nibbles.

    `backlight` is the backlight pin's level (already inverted for an active-low backpack).
    """
    data_pins = (pins.d4, pins.d5, pins.d6, pins.d7)
    idle = pcf8574_idle(pins, backlight)
    e = 1 << pins.e
    out: list[tuple[bytes, float]] = []
    chunk = bytearray()
    for nibble in nibbles:
        port = idle | (1 << pins.rs if nibble.rs else 0)
        for bit, pin in enumerate(data_pins):
            if nibble.bits >> bit & 1:
                port |= 1 << pin
        chunk += bytes((port, port | e, port))
        if nibble.delay_us > EXEC_US or len(chunk) >= MAX_CHUNK:
            wait = nibble.delay_us / 1e6 if nibble.delay_us > EXEC_US else 0.0
            out.append((bytes(chunk), wait))
            chunk = bytearray()
    if chunk:
        out.append((bytes(chunk), 0.0))
    return out


def gpio_steps(nibbles: Iterable[Nibble], lines: GpioLines) -> list[tuple[dict[int, bool], float]]:
    """(line levels to set in one call, seconds to wait after) for these nibbles."""
    data_lines = (lines.d4, lines.d5, lines.d6, lines.d7)
    out: list[tuple[dict[int, bool], float]] = []
    for nibble in nibbles:
        levels = {lines.rs: nibble.rs, lines.e: False}
        levels.update({line: bool(nibble.bits >> bit & 1)
                       for bit, line in enumerate(data_lines)})
        out.append((levels, 0.0))
        out.append(({lines.e: True}, 0.0))
        out.append(({lines.e: False}, nibble.delay_us / 1e6))
    return out
