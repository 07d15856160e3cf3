"""Text: message text for the display (language, HTML to plain text, QR links), log excerpts."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from msgspec import UNSET

from agent.everest.session_cost import MessageContent
from agent.structs import Record

_LINK_FORMATS = frozenset({"URI", "QRCODE"})


class Chosen(Record):
    """The text and QR code picked from a message list, and the text's language."""

    text: str | None = None
    language: str | None = None
    qr_code: str | None = None


NOTHING = Chosen()


def fold_whitespace(text: str) -> str:
    """Runs of whitespace become one space; ends are trimmed."""
    return " ".join(text.split())


@lru_cache(maxsize=256)
def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment: tags stripped, entities decoded, whitespace folded."""
    # Only when a message is HTML: html.parser and html.entities cost 0.53 MiB of RSS on a
    # board (bench/lazy_imports.py).
    from agent.model.htmltext import html_to_text as convert

    return fold_whitespace(convert(html))


@lru_cache(maxsize=64)
def _primary(tag: str) -> str:
    return tag.split("-", 1)[0].split("_", 1)[0].strip().lower()


def _pick(messages: Sequence[MessageContent], preferences: tuple[str, ...]) -> MessageContent:
    if len(messages) > 1:
        primaries = [_primary(m.language) if m.language is not UNSET else "" for m in messages]
        for pref in preferences:
            for msg, primary in zip(messages, primaries, strict=True):
                if primary == pref:
                    return msg
    return messages[0]


def _as_text(msg: MessageContent) -> str:
    if msg.format == "HTML":
        return html_to_text(msg.content)
    return fold_whitespace(msg.content)


def preferences(languages: Sequence[str]) -> tuple[str, ...]:
    """Configured language tags reduced to lower-case primary subtags, in order."""
    return tuple(_primary(lang) for lang in languages if lang.strip())


def choose(messages: Sequence[MessageContent] | None, prefs: tuple[str, ...]) -> Chosen:
    """The text in the preferred language (else the first), and a URI/QR code if any."""
    if not messages:
        return NOTHING
    texts = [m for m in messages if m.format not in _LINK_FORMATS]
    links = [m for m in messages if m.format in _LINK_FORMATS]
    text = language = qr = None
    if texts:
        picked = _pick(texts, prefs)
        text = _as_text(picked)
        language = picked.language if picked.language is not UNSET else None
    if links:
        qr = _pick(links, prefs).content.strip() or None
    return Chosen(text=text, language=language, qr_code=qr)


def truncate(data: bytes | str, limit: int = 120) -> str:
    """A payload shortened for a log line, with non-printables escaped."""
    text = data.decode("utf-8", "backslashreplace") if isinstance(data, bytes) else data
    text = text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= limit else text[:limit] + f"...({len(data)} bytes)"
