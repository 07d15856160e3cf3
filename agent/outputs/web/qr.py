"""QR codes as SVG for the web page (segno), with the standard quiet zone, black on white."""

from __future__ import annotations

import io
from functools import lru_cache

import segno


@lru_cache(maxsize=16)
def svg(payload: str) -> bytes | None:
    """The code for `payload` as a scalable SVG document, or None when it does not fit a code."""
    try:
        code = segno.make_qr(payload, error="m")
    except segno.DataOverflowError:
        return None
    out = io.BytesIO()
    # No width/height, only a viewBox: the page sizes the code to the screen.
    code.save(out, kind="svg", border=4, omitsize=True, xmldecl=False, light="#fff",
              dark="#000", nl=False, title="QR code")
    return out.getvalue()
