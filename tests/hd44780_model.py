"""A small HD44780 model for tests: replays what the wires carry and shows what the glass shows.

It knows only the datasheet: 4-bit nibble assembly (D3-D0 unwired, so they read low in
8-bit mode), the instruction set, DDRAM in 2-line mode (0x00-0x27, 0x40-0x67), CGRAM,
the entry mode, the state after power-on (8-bit mode, display off, blank DDRAM, CGRAM
garbage), and how long it stays busy (40 ms after power-on, 1.52 ms for clear and home,
37 us for anything else). Its character decoding is its own small table, not the agent's.

Time is simulated, never measured: `Clock` advances only by the agent's sleeps and by the
bytes' transfer time on a simulated I2C bus, and a strobe while busy is recorded as an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

EURO_ART = ("..###", ".#...", "####.", ".#...", "####.", ".#...", "..###", ".....")

# The codes the tests use, decoded from the datasheet's font tables.
_COMMON = {code: chr(code) for code in range(0x20, 0x7E) if code != 0x5C}
DECODE: dict[str, dict[int, str]] = {
    "A00": {**_COMMON, 0x5C: "¥", 0x7E: "→", 0xE1: "ä", 0xEF: "ö", 0xF5: "ü", 0xEE: "ñ"},
    "A02": {**_COMMON, 0x5C: "\\", 0x7E: "~", 0xA3: "£", 0xA5: "¥",
            **{code: chr(code) for code in range(0xC0, 0x100) if code != 0xD8}},
}

DEFAULT_PIN_MAP = {"rs": 0, "rw": 1, "e": 2, "backlight": 3, "d4": 4, "d5": 5, "d6": 6, "d7": 7}


class Clock:
    """Simulated time in seconds: the agent's sleep() advances it."""

    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        """What the agent calls instead of time.sleep."""
        self.now += seconds


def art(rows: Sequence[int]) -> tuple[str, ...]:
    """A CGRAM glyph as 8 strings of `#` and `.`."""
    return tuple(format(row & 0x1F, "05b").replace("1", "#").replace("0", ".") for row in rows)


class Hd44780Model:
    """One controller with its glass; `strobe()` is one falling edge of E."""

    def __init__(self, columns: int, rows: int, rom: Literal["A00", "A02"],
                 glyphs: Mapping[tuple[str, ...], str] | None = None,
                 rs_latched_on: Literal["first", "second"] = "second") -> None:
        self.columns, self.rows, self.rom = columns, rows, rom
        self.glyphs: dict[tuple[str, ...], str] = dict(glyphs or {EURO_ART: "€"})
        self.rs_latched_on = rs_latched_on
        self.errors: list[str] = []
        self.busy_until = 0.0
        self.now: float | None = None
        self.clears = 0
        self.ddram_writes = 0
        self.cgram_writes = 0
        self.power_cycle()

    def power_cycle(self, now: float = 0.0) -> None:
        """The state after the supply comes back (the internal reset)."""
        self.busy_until = now + 0.040
        self.eight_bit, self.two_line, self.display_on = True, False, False
        self.increment, self.shift = True, False
        self.ddram = [0x20] * 0x80
        self.cgram = [0b10101] * 64
        self.ac, self.in_cgram = 0, False
        self.pending: tuple[bool, int] | None = None

    def strobe(self, rs: bool, rw: bool, bits: int, now: float | None = None) -> None:
        """E fell with RS, RW and D7-D4 at these levels (at simulated time `now`, if given)."""
        if now is not None and now < self.busy_until:
            self.errors.append(f"strobe {1e6 * (self.busy_until - now):.0f} us too early")
        self.now = now
        if rw:
            self.errors.append("RW high: a read strobe")
            return
        if self.eight_bit:
            self.execute(rs, bits << 4)
        elif self.pending is None:
            self.pending = (rs, bits)
        else:
            first_rs, high = self.pending
            self.pending = None
            self.execute(first_rs if self.rs_latched_on == "first" else rs, high << 4 | bits)

    def execute(self, rs: bool, value: int) -> None:
        """One 8-bit transfer: data when RS is high, else an instruction."""
        if self.now is not None:
            slow = not rs and value in (0x01, 0x02, 0x03)  # clear, home
            self.busy_until = self.now + (1.52e-3 if slow else 37e-6)
        if rs:
            self._write(value)
        elif value & 0x80:
            self.ac, self.in_cgram = value & 0x7F, False
        elif value & 0x40:
            self.ac, self.in_cgram = value & 0x3F, True
        elif value & 0x20:
            self.eight_bit, self.two_line = bool(value & 0x10), bool(value & 0x08)
        elif value & 0x10:
            if value & 0x08:
                self.errors.append("display shift")
            else:
                self._step(forward=bool(value & 0x04))
        elif value & 0x08:
            self.display_on = bool(value & 0x04)
        elif value & 0x04:
            self.increment, self.shift = bool(value & 0x02), bool(value & 0x01)
        elif value & 0x02:
            self.ac, self.in_cgram = 0, False
        elif value == 0x01:
            self.ddram = [0x20] * 0x80
            self.ac, self.in_cgram, self.increment = 0, False, True
            self.clears += 1

    def _write(self, value: int) -> None:
        if self.shift:
            self.errors.append("write with display shift on")
        if self.in_cgram:
            self.cgram[self.ac] = value & 0x1F
            self.cgram_writes += 1
        else:
            if not (self.ac <= 0x27 or 0x40 <= self.ac <= 0x67):
                self.errors.append(f"DDRAM write outside 2-line memory: {self.ac:#x}")
            self.ddram[self.ac] = value
            self.ddram_writes += 1
        self._step(self.increment)

    def _step(self, forward: bool) -> None:
        if self.in_cgram:
            self.ac = (self.ac + (1 if forward else -1)) & 0x3F
        elif forward:
            self.ac = {0x27: 0x40, 0x67: 0x00}.get(self.ac, self.ac + 1)
        else:
            self.ac = {0x40: 0x27, 0x00: 0x67}.get(self.ac, self.ac - 1)

    def row_address(self, row: int) -> int:
        """Where row `row` starts in DDRAM (rows 2 and 3 continue rows 0 and 1)."""
        return (0x00, 0x40)[row % 2] + (self.columns if row >= 2 else 0)

    def glass(self) -> list[str]:
        """What the display shows, row by row (blank when the display is off)."""
        if not self.display_on:
            return [" " * self.columns] * self.rows
        if not self.two_line:
            self.errors.append("multi-row display in 1-line mode")
        out = []
        for row in range(self.rows):
            start = self.row_address(row)
            out.append("".join(self._char(self.ddram[start + col])
                               for col in range(self.columns)))
        return out

    def _char(self, code: int) -> str:
        if code < 0x10:
            slot = code & 0x07
            return self.glyphs.get(art(self.cgram[slot * 8:slot * 8 + 8]), "\N{WHITE SQUARE}")
        return DECODE[self.rom].get(code, "\N{REPLACEMENT CHARACTER}")


class Pcf8574Wires:
    """Feeds PCF8574 port bytes to a model: a strobe on each E falling edge."""

    def __init__(self, model: Hd44780Model, pins: Mapping[str, int] | None = None,
                 clock: Clock | None = None, byte_s: float = 0.0) -> None:
        self.model = model
        self.pins = dict(pins or DEFAULT_PIN_MAP)
        self.clock, self.byte_s = clock, byte_s
        self.port = 0
        self.bytes_seen = 0

    def bit(self, name: str, port: int | None = None) -> bool:
        """The level of one signal in a port byte (the last one by default)."""
        return bool((self.port if port is None else port) >> self.pins[name] & 1)

    @property
    def backlight(self) -> bool:
        """The backlight pin's level."""
        return self.bit("backlight")

    def feed(self, data: bytes) -> None:
        """Apply port bytes in order."""
        for port in data:
            if self.clock is not None:
                self.clock.now += self.byte_s  # the byte's time on the bus
            if self.bit("e") and not self.bit("e", port):
                if (port ^ self.port) & ~(1 << self.pins["e"]):
                    self.model.errors.append("data changed with the E falling edge")
                bits = sum(self.bit(f"d{4 + i}", port) << i for i in range(4))
                self.model.strobe(self.bit("rs", port), self.bit("rw", port), bits,
                                  None if self.clock is None else self.clock.now)
            self.port = port
            self.bytes_seen += 1


class GpioWires:
    """A fake gpio line backend (the `gpio_backend.Opener`/`Backend` calls) wired to a model."""

    def __init__(self, model: Hd44780Model, lines: Mapping[str, int],
                 clock: Clock | None = None) -> None:
        self.model = model
        self.lines = dict(lines)
        self.clock = clock
        self.level: dict[int, bool] = {}
        self.requests: list[tuple[str, tuple[int, ...], bool, str]] = []
        self.released = 0

    def __call__(self, chip: str, offsets: Sequence[int], *, active_low: bool,
                 consumer: str) -> GpioWires:
        self.requests.append((chip, tuple(offsets), active_low, consumer))
        self.level = dict.fromkeys(offsets, False)
        return self

    def set(self, values: Mapping[int, bool]) -> None:
        """One line-request `set_values` call."""
        assert set(values) <= set(self.level), "set on a line that was not requested"
        e = self.lines["e"]
        falling = self.level[e] and not values.get(e, True)
        if falling and any(self.level[o] != v for o, v in values.items() if o != e):
            self.model.errors.append("data changed with the E falling edge")
        self.level.update(values)
        if falling:
            bits = sum(self.level[self.lines[f"d{4 + i}"]] << i for i in range(4))
            self.model.strobe(self.level[self.lines["rs"]], False, bits,
                              None if self.clock is None else self.clock.now)

    def release(self) -> None:
        """Give the lines back."""
        self.released += 1

    def get(self, name: str) -> bool:
        """The level of a named line."""
        return self.level[self.lines[name]]
