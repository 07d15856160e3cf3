"""HD44780 character ROMs: which characters each has, and the custom glyphs drawn in CGRAM.

Pure (no I/O). `A00` is the Japanese standard ROM (ASCII except `\\` and `~`, which show `¥`
and `→`; half-width katakana; a few Greek letters and umlauts), `A02` the European one (ASCII
and nearly all of Latin-1's letters). Neither has `€`: it is drawn as a CGRAM glyph. Anything
else is transliterated like the serial line protocol does (`é` -> `e` on A00), and what is
still missing becomes `?`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Literal

from agent.outputs.lineproto import transliterate

Rom = Literal["A00", "A02"]

# A glyph is 8 rows of 5 pixels (bit 4 = leftmost), the cursor row last.
Glyph = tuple[int, int, int, int, int, int, int, int]

EURO: Glyph = (
    0b00111,
    0b01000,
    0b11110,
    0b01000,
    0b11110,
    0b01000,
    0b00111,
    0b00000,
)

# The glyphs the encoder may load into the 8 CGRAM slots, by the character they stand for.
GLYPHS: Mapping[str, Glyph] = {"€": EURO}
CGRAM_SLOTS = 8


def _ascii(*excluded: str) -> dict[str, int]:
    return {chr(code): code for code in range(0x20, 0x7F) if chr(code) not in excluded}


def _a00() -> dict[str, int]:
    table = _ascii("\\", "~")
    table.update({
        "¥": 0x5C, "→": 0x7E, "←": 0x7F, "α": 0xE0, "ä": 0xE1, "β": 0xE2, "ε": 0xE3,
        "µ": 0xE4, "μ": 0xE4, "ρ": 0xE6, "√": 0xE8, "¢": 0xEC, "ñ": 0xEE, "ö": 0xEF,
        "θ": 0xF2, "∞": 0xF3, "Ω": 0xF4, "ü": 0xF5, "Σ": 0xF6, "π": 0xF7, "÷": 0xFD,
        "█": 0xFF, "°": 0xDF,
    })
    # Half-width katakana and punctuation, in JIS X 0201 order.
    table.update({chr(0xFF61 + i): 0xA1 + i for i in range(0xDF - 0xA1 + 1)})
    return table


def _a02() -> dict[str, int]:
    table = _ascii()
    table.update({ch: ord(ch) for ch in "¡¢£¥§©«®±²³µ¶·¹º»¼½¾¿"})
    table["μ"] = 0xB5
    # 0xC0-0xFF follow Latin-1, except 0xD8 (a Φ on this ROM, not Ø).
    table.update({chr(code): code for code in range(0xC0, 0x100) if code != 0xD8})
    return table


CHARSETS: Mapping[Rom, Mapping[str, int]] = {"A00": _a00(), "A02": _a02()}


@lru_cache(maxsize=4096)
def _map_char(ch: str, rom: Rom, glyph_chars: frozenset[str]) -> str:
    charset = CHARSETS[rom]
    if ch == "\n" or ch in charset or ch in glyph_chars:
        return ch
    folded = transliterate(ch, "ascii")
    return "".join(c if c in charset else "?" for c in folded)


def rom_text(text: str, rom: Rom, glyph_chars: frozenset[str] = frozenset(GLYPHS)) -> str:
    """`text` using only characters the ROM has or a glyph draws (`€` stays, `é` -> `e`).

    Newlines stay (they start display lines); other control characters become `?`.
    """
    return "".join(_map_char(ch, rom, glyph_chars) for ch in text)


def rom_code(ch: str, rom: Rom) -> int:
    """The character code of a ROM character (KeyError when the ROM lacks it)."""
    return CHARSETS[rom][ch]
