"""HD44780 encoder: display rows -> the 4-bit nibble sequence that puts them on the glass.

Pure (no I/O, no sleeping): each `Nibble` carries the wait the controller needs after it;
the bus code (agent.outputs.hd44780.device) does the waiting. The encoder keeps a copy of what
the display shows (DDRAM per cell, the glyphs in CGRAM, the address counter) so that an
update rewrites only the cells that changed, never with a clear (it blanks the glass for
1.52 ms and every cell must then be written again).

- `update(rows)` after construction or `invalidate()` starts with the datasheet's 4-bit
  initialisation (three 0x3 nibbles, then 0x2: this brings the controller into 4-bit mode
  from any state, even when a reset left it in 8-bit mode or half way through a nibble
  pair), including display off and clear.
- `repaint(rows)` sends the same synchronisation without display off and clear (no blink
  every `refresh_s`), reloads the glyphs and writes every cell.

DDRAM addressing (2-line mode): row 0 at 0x00, row 1 at 0x40; 4-row displays continue row 0
in row 2 (0x00 + columns) and row 1 in row 3 (0x40 + columns), so 20x4 is 0x00 0x40 0x14 0x54.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import NamedTuple

from agent.model.view import View
from agent.outputs.hd44780.rom import CGRAM_SLOTS, CHARSETS, GLYPHS, Glyph, Rom, rom_text
from agent.outputs.lineproto import field_values, layout

# (columns, rows) of the single-controller displays whose DDRAM layout is the one above.
GEOMETRIES: tuple[tuple[int, int], ...] = (
    (8, 2), (16, 2), (20, 2), (24, 2), (40, 2), (16, 4), (20, 4))

# Waits after an instruction, in microseconds: the datasheet's figures (37 us, 1.52 ms at
# 270 kHz) with a margin for slower clones, and the initialisation's 4.1 ms and 100 us.
EXEC_US = 50
CLEAR_US = 2000
INIT_FIRST_US = 4100
INIT_SECOND_US = 100

FUNCTION_SET_4BIT_2LINE = 0x28
DISPLAY_OFF = 0x08
DISPLAY_ON = 0x0C  # no cursor, no blink
CLEAR = 0x01
ENTRY_INCREMENT = 0x06  # the address counter moves right; the display does not shift
SET_CGRAM = 0x40
SET_DDRAM = 0x80
UNKNOWN = -1  # a cell whose content is not known (after a repaint's re-init)
QUESTION = ord("?")


class Nibble(NamedTuple):
    """One E strobe: RS, the four data bits D7-D4, then the wait (us) before the next."""

    rs: bool
    bits: int
    delay_us: int


def _byte(rs: bool, value: int, delay_us: int) -> list[Nibble]:
    return [Nibble(rs, value >> 4, 0), Nibble(rs, value & 0x0F, delay_us)]


def command(value: int, delay_us: int = EXEC_US) -> list[Nibble]:
    """An instruction byte as two nibbles (RS low)."""
    return _byte(False, value, delay_us)


def data(value: int) -> list[Nibble]:
    """A data byte (character code or glyph row) as two nibbles (RS high)."""
    return _byte(True, value, EXEC_US)


def init_sequence(clear: bool = True) -> list[Nibble]:
    """The datasheet's 4-bit initialisation; without `clear` the glass is not blanked."""
    out = [Nibble(False, 0x3, INIT_FIRST_US), Nibble(False, 0x3, INIT_SECOND_US),
           Nibble(False, 0x3, EXEC_US), Nibble(False, 0x2, EXEC_US)]
    out += command(FUNCTION_SET_4BIT_2LINE)
    if clear:
        out += command(DISPLAY_OFF) + command(CLEAR, CLEAR_US)
    out += command(ENTRY_INCREMENT) + command(DISPLAY_ON)
    return out


def check_geometry(columns: int, rows: int) -> None:
    """Raise ValueError naming `columns` or `rows` for an unsupported geometry."""
    if (columns, rows) in GEOMETRIES:
        return
    supported = ", ".join(f"{c}x{r}" for c, r in GEOMETRIES)
    key = "rows" if any(c == columns for c, _ in GEOMETRIES) else "columns"
    raise ValueError(f"{key}: {columns}x{rows} is not a supported geometry "
                     f"(columns x rows: {supported})")


def screen_rows(view: View, template: str, columns: int, rows: int, rom: Rom,
                separator: str = "\n") -> list[str]:
    """The template filled in for `view`, in the ROM's characters, wrapped and padded to fit."""
    text = rom_text(template.format_map(field_values(view, separator)), rom)
    return layout(text, columns, rows, pad=True)


def row_addresses(columns: int, rows: int) -> tuple[int, ...]:
    """The DDRAM address of each row's first cell."""
    check_geometry(columns, rows)
    return (0x00, 0x40, columns, 0x40 + columns)[:rows]


def _next_address(address: int) -> int:
    """The address counter after a DDRAM write in 2-line mode (0x27 -> 0x40 -> 0x67 -> 0x00)."""
    if address == 0x27:
        return 0x40
    if address == 0x67:
        return 0x00
    return address + 1


class Hd44780Encoder:
    """Keeps the display's state and turns each wanted screen into the nibbles to send."""

    def __init__(self, columns: int, rows: int, rom: Rom,
                 glyphs: Mapping[str, Glyph] = GLYPHS) -> None:
        self.columns, self.rows = columns, rows
        self.addresses = row_addresses(columns, rows)
        self.charset = CHARSETS[rom]
        self.glyphs = dict(glyphs)
        self._glass: list[list[int]] | None = None
        self._slots: dict[str, int] = {}  # glyph character -> CGRAM slot holding it
        self._ac: int | None = None  # the DDRAM address counter, None when not known

    def invalidate(self) -> None:
        """Forget the display's state: the next update() initialises it from scratch."""
        self._glass = None
        self._slots.clear()
        self._ac = None

    def update(self, rows: Sequence[str]) -> list[Nibble]:
        """The nibbles that make the glass show `rows`: only the changed cells, or a full init."""
        out: list[Nibble] = []
        if self._glass is None:
            out += init_sequence(clear=True)
            self._glass = [[ord(" ")] * self.columns for _ in range(self.rows)]
            self._slots.clear()
            self._ac = 0
        return out + self._write(rows)

    def repaint(self, rows: Sequence[str]) -> list[Nibble]:
        """Re-initialise without blanking, reload the glyphs and write every cell."""
        out = init_sequence(clear=False)
        self._glass = [[UNKNOWN] * self.columns for _ in range(self.rows)]
        self._slots.clear()
        self._ac = None
        return out + self._write(rows)

    def _write(self, rows: Sequence[str]) -> list[Nibble]:
        padded = [(rows[r] if r < len(rows) else "").ljust(self.columns)[:self.columns]
                  for r in range(self.rows)]
        out = self._load_glyphs(padded)
        wanted = [[self._code(ch) for ch in row] for row in padded]
        for r, row in enumerate(wanted):
            for start, end in _changed_runs(self._glass_row(r), row):
                out += self._write_run(r, start, row[start:end])
        return out

    def _glass_row(self, r: int) -> list[int]:
        assert self._glass is not None
        return self._glass[r]

    def _code(self, ch: str) -> int:
        slot = self._slots.get(ch)
        if slot is not None:
            return slot
        return self.charset.get(ch, QUESTION)

    def _load_glyphs(self, rows: Sequence[str]) -> list[Nibble]:
        """Give every glyph character on screen a CGRAM slot, reusing slots no longer shown."""
        needed = list(dict.fromkeys(ch for row in rows for ch in row if ch in self.glyphs))
        keep = {ch: slot for ch, slot in self._slots.items() if ch in needed}
        free = [slot for slot in range(CGRAM_SLOTS) if slot not in keep.values()]
        out: list[Nibble] = []
        for ch in needed:
            if ch in keep or not free:
                continue  # a glyph beyond the 8 slots shows as "?"
            slot = free.pop(0)
            keep[ch] = slot
            out += command(SET_CGRAM | slot << 3)
            for pattern in self.glyphs[ch]:
                out += data(pattern)
            self._ac = None  # the counter now points into CGRAM
        self._slots = keep
        return out

    def _write_run(self, r: int, start: int, codes: Sequence[int]) -> list[Nibble]:
        address = self.addresses[r] + start
        out: list[Nibble] = []
        if self._ac != address:
            out += command(SET_DDRAM | address)
        glass = self._glass_row(r)
        for i, code in enumerate(codes):
            out += data(code)
            glass[start + i] = code
            address = _next_address(address)
        self._ac = address
        return out


def _changed_runs(have: Sequence[int], want: Sequence[int]) -> Iterator[tuple[int, int]]:
    """Half-open column ranges [start, end) where `want` differs from `have`."""
    start: int | None = None
    for col, (old, new) in enumerate(zip(have, want, strict=True)):
        if old != new and start is None:
            start = col
        elif old == new and start is not None:
            yield start, col
            start = None
    if start is not None:
        yield start, len(want)
