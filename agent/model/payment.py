"""The ad-hoc payment URL of a connector (AFIR): a template filled with the EVSE's identity.

`{evse_id}` is EVerest's EVSE id (`e2m/evse_id`), percent-encoded only where RFC 3986 does not
allow a character in a path segment, so `DE*PNX*E12345*1` goes in as it is; `{evse}` is the
configured EVSE number. Pure: no I/O.
"""

from __future__ import annotations

import string
from typing import Final

FIELDS: Final = frozenset({"evse_id", "evse"})
# RFC 3986 pchar: unreserved, sub-delims, ":" and "@" (UTF-8 bytes of anything else as %XX).
# Not urllib.parse.quote: urllib.parse imports ipaddress, ~0.4 MB of RSS for this one function.
_PCHAR: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
                          b"!$&'()*+,;=:@")


def template_error(template: str) -> str | None:
    """Why `template` cannot be a payment URL template (None when it can)."""
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        return f"not a template: {exc}"
    unknown = sorted(set(names) - FIELDS)
    if unknown:
        return f"unknown placeholder {{{unknown[0]}}} (use {{evse_id}} or {{evse}})"
    return None


def payment_url(template: str, evse_id: str | None, evse: int | None) -> str | None:
    """The URL for this EVSE; None without a template, or while a needed id is not known."""
    if not template:
        return None
    needs = {f for _, f, _, _ in string.Formatter().parse(template) if f}
    if ("evse_id" in needs and not evse_id) or ("evse" in needs and evse is None):
        return None
    return template.format(evse_id=path_segment(evse_id or ""),
                           evse="" if evse is None else evse)


def path_segment(text: str) -> str:
    """`text` percent-encoded for one URL path segment (RFC 3986 pchar kept as it is)."""
    return "".join(chr(b) if b in _PCHAR else f"%{b:02X}" for b in text.encode())
