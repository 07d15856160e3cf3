"""HTML fragments (message content of format HTML) to plain text; imported only when needed."""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser

_BREAKING_TAGS = frozenset({"br", "p", "div", "li", "tr", "td", "th", "h1", "h2", "h3", "h4"})
_TAG = re.compile(r"<[^>]*>?")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in _BREAKING_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1
        elif tag in _BREAKING_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Text of an HTML fragment: tags stripped, entities decoded (whitespace not folded)."""
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
    except AssertionError:
        # html.parser asserts on some malformed markup (`<![x[`): strip tags the blunt way.
        return unescape(_TAG.sub(" ", html))
    return "".join(parser.parts)
