"""Nextion HMI instruction encoder: `component.txt="value"` + 0xFF 0xFF 0xFF, only for changes.

Pure (no I/O). The serial output with `protocol = "nextion"` writes what `encode()` returns.

- Each mapped view field (placeholder names of `agent.outputs.lineproto`) is sent as
  `<component>.txt="<text>"` followed by the terminator `FF FF FF`, in the order of the
  `fields` table, and only when its text differs from what was last sent.
- In the text, `\\` becomes `\\\\` and `"` becomes `\\"`; a list separator newline becomes
  Nextion's `\\r` (line break inside a text component). Characters the display's font encoding
  lacks are transliterated (€ -> EUR); a character whose encoding would be the byte 0xFF
  (latin-1 ÿ, cp437 no-break space) is replaced too, as 0xFF would end the instruction.
- With `pages`, a screen mapped to a page sends `page <name>` when the page changes; the
  display then re-initialises that page's components, so every mapped field is sent again.
- `reset()` (called after the device is (re)opened) forgets everything, so the next view
  re-syncs the whole display.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from agent.model.view import Screen, View
from agent.outputs.lineproto import FIELDS, Encoding, field_values, transliterate

TERMINATOR = b"\xff\xff\xff"
COMPONENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")
PAGE_RE = re.compile(r"[A-Za-z0-9_]+")


def check_fields(fields: Mapping[str, str]) -> None:
    """Raise ValueError for an unknown view field or a malformed component name."""
    if not fields:
        raise ValueError("fields: map at least one view field to a component, "
                         'e.g. total = "t0"')
    for field, component in fields.items():
        if field not in FIELDS:
            raise ValueError(f"fields: unknown view field {field!r} (known: {', '.join(FIELDS)})")
        if not COMPONENT_RE.fullmatch(component):
            raise ValueError(f"fields.{field}: {component!r} is not a component name "
                             "(e.g. t0 or page0.t0)")


def check_pages(pages: Mapping[Screen, str]) -> None:
    """Raise ValueError for a malformed page name."""
    for screen, page in pages.items():
        if not PAGE_RE.fullmatch(page):
            raise ValueError(f"pages.{screen}: {page!r} is not a page name or number")


def escape(text: str) -> str:
    """The text as the inside of a Nextion string literal."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\r")


def _no_ff(text: str, encoding: Encoding) -> str:
    """Replace characters that encode to 0xFF (the instruction terminator byte)."""
    if encoding == "utf-8" or b"\xff" not in text.encode(encoding):
        return text
    out = []
    for ch in text:
        if ch.encode(encoding) != b"\xff":
            out.append(ch)
            continue
        base = unicodedata.normalize("NFKD", ch)
        plain = "".join(c for c in base if not unicodedata.combining(c))
        out.append(plain if plain and b"\xff" not in plain.encode(encoding, "replace") else "?")
    return "".join(out)


def instruction(text: str, encoding: Encoding) -> bytes:
    """One instruction: its text encoded, then the terminator."""
    return _no_ff(text, encoding).encode(encoding) + TERMINATOR


class NextionEncoder:
    """Turns successive views into the instructions that update the display."""

    def __init__(self, fields: Mapping[str, str], *, pages: Mapping[Screen, str] | None = None,
                 encoding: Encoding = "ascii", separator: str = "\n") -> None:
        check_fields(fields)
        check_pages(pages or {})
        self.fields = dict(fields)
        self.pages: dict[Screen, str] = dict(pages or {})
        self.encoding: Encoding = encoding
        self.separator = separator
        self._page: str | None = None
        self._sent: dict[str, str] = {}

    def reset(self) -> None:
        """Forget what the display shows: the next encode() sends page and all fields."""
        self._page = None
        self._sent.clear()

    def encode(self, view: View) -> bytes:
        """Instructions for what changed since the last call (b"" when nothing did)."""
        out: list[bytes] = []
        page = self.pages.get(view.screen)
        if page is not None and page != self._page:
            out.append(instruction(f"page {page}", self.encoding))
            self._page = page
            self._sent.clear()
        values = field_values(view, self.separator)
        for field, component in self.fields.items():
            text = transliterate(values[field], self.encoding)
            if self._sent.get(field) == text:
                continue
            out.append(instruction(f'{component}.txt="{escape(text)}"', self.encoding))
            self._sent[field] = text
        return b"".join(out)
