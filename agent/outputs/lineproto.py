"""Text rendering for character displays: template placeholders, wrapping, transliteration.

Pure functions only (no I/O); the serial output's `protocol = "line"` and the Nextion encoder
use them.

Placeholders (every one renders as a string; an absent value renders as ""):

=============  ==============================================================================
screen         price, tariff, charging, idle, finished or unavailable
link           up or down
session_id     the session id
status         Running, Idle or Finished
total          the total's display text (`total.text`)
total_value    the total as a decimal number, e.g. 12.34 (from value and decimals)
currency       the total's currency code
stale          "stale" when the total is stale, else ""
energy_wh      energy in Wh, e.g. 12345
energy_kwh     energy as "12.345 kWh"
prices         the price lines, joined by `separator`
idle_price     the idle price text
next_from      when the next prices apply (as EVerest sent it)
next_prices    the next period's price lines, joined by `separator`
message        the message text: the backend's display message while one is on screen
               (OCPP SetDisplayMessage, [display_messages]), else the agent's own
language       the message language
display_message  the backend's display message on screen now, or ""
qr_code        the QR code payload (a URL)
updated_at     the view's update stamp
preview        the local price preview lines, joined by `separator`
estimate       the local cost estimate's text
final          on the finished screen: "final", or "not final" when the final cost never came
live_total     the live total between backend updates ([[evse]]), e.g. "≈ 4.71 EUR"
payment_url    the connector's ad-hoc payment URL on the price screen (for a QR code)
power_kw       the live power ([[evse]]), e.g. "7.4 kW"
duration       the session's duration ([[evse]]), e.g. "1:05:09"
evse           the configured EVSE number ([[evse]])
evse_id        EVerest's EVSE id ([[evse]]), e.g. "DE*PNX*E12345*1"
meter_key      the billing meter's OCMF public key ([[evse]], Eichrecht), as published
=============  ==============================================================================

Control characters inside values (including newlines) become spaces, so only the template's
own newlines and the list `separator` start a new display line.
"""

from __future__ import annotations

import string
import textwrap
import unicodedata
from collections.abc import Mapping
from functools import lru_cache
from typing import Literal

from agent.model.money import to_decimal
from agent.model.view import View, duration_text, energy_kwh_text, power_kw_text

Encoding = Literal["ascii", "latin-1", "cp437", "utf-8"]

FIELDS: tuple[str, ...] = (
    "screen", "link", "session_id", "status", "total", "total_value", "currency", "stale",
    "energy_wh", "energy_kwh", "prices", "idle_price", "next_from", "next_prices", "message",
    "language", "qr_code", "updated_at", "preview", "estimate", "final", "live_total",
    "power_kw", "duration", "evse", "evse_id", "payment_url", "meter_key", "display_message",
)

DEFAULT_TEMPLATE = "{screen} {total}\n{message}"

# Characters no display font has, mapped before the generic accent stripping.
_TRANSLIT: dict[str, str] = {
    "€": "EUR", "£": "GBP", "¥": "JPY", "¢": "c", "₹": "INR", "₽": "RUB", "₺": "TRY",
    "ß": "ss", "ẞ": "SS", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O",
    "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "TH",
    "ı": "i", "‘": "'", "’": "'", "‚": "'", "“": '"', "”": '"', "„": '"', "«": '"', "»": '"',
    "–": "-", "—": "-", "‐": "-", "−": "-", "…": "...", "•": "*", "·": ".", "×": "x",
    "÷": "/", "°": "deg", "µ": "u", "½": "1/2", "¼": "1/4", "¾": "3/4", "©": "(c)",
    "®": "(R)", "™": "TM", "§": "S", "¶": "P", "¡": "!", "¿": "?", "\u00a0": " ",
}


def _sanitize(text: str) -> str:
    """Control characters (newlines included) become spaces."""
    if text.isprintable():
        return text
    return "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch
                   for ch in text)


def field_values(view: View, separator: str = "\n") -> dict[str, str]:
    """Every placeholder's text for this view (see the module docstring)."""
    total, nxt, est = view.total, view.next_period, view.estimate
    shown = view.display_message

    def joined(items: list[str]) -> str:
        return separator.join(_sanitize(item) for item in items)

    raw = {
        "screen": view.screen,
        "link": view.link,
        "session_id": view.session_id or "",
        "status": view.status or "",
        "total": total.text if total else "",
        "total_value": f"{to_decimal(total.value, total.decimals):f}" if total else "",
        "currency": (total.currency or "") if total else "",
        "stale": "stale" if view.stale else "",
        "energy_wh": "" if view.energy_wh is None else str(view.energy_wh),
        "energy_kwh": energy_kwh_text(view),
        "idle_price": view.idle_price or "",
        "next_from": nxt.from_ if nxt else "",
        "message": (shown.text or "") if shown is not None else (view.message or ""),
        "display_message": (shown.text or "") if shown is not None else "",
        "language": view.language or "",
        "qr_code": view.qr_code or "",
        "payment_url": view.payment_url or "",
        "updated_at": view.updated_at,
        "estimate": est.text if est else "",
        "final": "" if view.final is None else ("final" if view.final else "not final"),
        "live_total": view.live_total.text if view.live_total else "",
        "power_kw": power_kw_text(view),
        "duration": duration_text(view),
        "evse": "" if view.evse is None else str(view.evse),
        "evse_id": view.evse_id or "",
        "meter_key": view.meter_public_key or "",
    }
    values = {key: _sanitize(value) for key, value in raw.items()}
    values["prices"] = joined(view.prices)
    values["next_prices"] = joined(nxt.prices) if nxt else ""
    values["preview"] = joined(view.preview)
    return values


def check_template(template: str) -> None:
    """Raise ValueError unless every placeholder is a known field name."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"template: {exc} (write {{{{ and }}}} for literal braces)") from None
    for _, name, spec, _ in parsed:
        if name is None:
            continue
        if name not in FIELDS:
            raise ValueError(f"template: unknown placeholder {{{name}}} "
                             f"(known: {', '.join(FIELDS)})")
        if spec and "{" in spec:
            raise ValueError(f"template: nested placeholder in {{{name}:{spec}}}")
    # Catches bad format specs such as {total:d} with sample text.
    try:
        template.format_map(dict.fromkeys(FIELDS, "x"))
    except (ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise ValueError(f"template: {exc}") from None


@lru_cache(maxsize=4096)
def _char(ch: str, encoding: Encoding) -> str:
    try:
        ch.encode(encoding)
        return ch
    except UnicodeEncodeError:
        pass
    mapped = _TRANSLIT.get(ch)
    if mapped is None:
        decomposed = unicodedata.normalize("NFKD", ch)
        mapped = "".join(c for c in decomposed if not unicodedata.combining(c))
        if mapped == ch:
            mapped = ""
    try:
        mapped.encode(encoding)
    except UnicodeEncodeError:
        mapped = ""
    return mapped or "?"


def transliterate(text: str, encoding: Encoding) -> str:
    """`text` using only characters `encoding` has: € -> EUR, é -> e (in ascii), else "?"."""
    if encoding == "utf-8":
        return text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates only
    try:
        text.encode(encoding)
        return text
    except UnicodeEncodeError:
        return "".join(_char(ch, encoding) for ch in text)


def layout(text: str, width: int | None, lines: int | None, pad: bool = False) -> list[str]:
    """Split into display lines: wrap at `width`, keep the first `lines`, pad if asked.

    Trailing spaces and trailing empty lines are dropped (one line always remains) unless
    `pad` fills every line to `width` and the display to `lines` lines.
    """
    out: list[str] = []
    for raw in text.split("\n"):
        line = raw.rstrip()
        if width is None or len(line) <= width:
            out.append(line)
        else:
            out.extend(textwrap.wrap(line, width=width, break_on_hyphens=False) or [""])
    while len(out) > 1 and not out[-1]:
        out.pop()
    if lines is not None:
        del out[lines:]
    if pad:
        if lines is not None:
            out.extend([""] * (lines - len(out)))
        if width is not None:
            out = [line.ljust(width) for line in out]
    return out


class LineRenderer:
    """Renders a view into one frame: `clear` + each display line followed by `eol`."""

    def __init__(self, template: str = DEFAULT_TEMPLATE, *, width: int | None = None,
                 lines: int | None = None, encoding: Encoding = "ascii", eol: bytes = b"\r\n",
                 clear: bytes = b"", pad: bool = False, separator: str = "\n") -> None:
        check_template(template)
        self.template = template
        self.width, self.lines, self.pad = width, lines, pad
        self.encoding: Encoding = encoding
        self.eol, self.clear, self.separator = eol, clear, separator

    def text_lines(self, view: View) -> list[str]:
        """The display lines for this view, transliterated for the encoding."""
        values: Mapping[str, str] = field_values(view, self.separator)
        text = transliterate(self.template.format_map(values), self.encoding)
        return layout(text, self.width, self.lines, self.pad)

    def frame(self, view: View) -> bytes:
        """The bytes sent to the display for this view."""
        body = b"".join(line.encode(self.encoding) + self.eol for line in self.text_lines(view))
        return self.clear + body
