"""QR codes drawn as Unicode half blocks, for text screens (the `qr` extra: segno).

Each character cell holds two modules, one above the other (`▀`, `▄`, `█` or a space), so a
terminal's tall cells give square modules. The code has the standard quiet zone of four
light modules on every side. Which modules get ink depends on the screen: on a dark
background the characters draw the light modules (`light-on-dark`), on a light one the dark
modules (`dark-on-light`); either way the picture is dark code on a light ground.

segno is imported on the first code drawn; without it `draw()` returns None, once logged.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Literal

from agent.outputs.qrmatrix import modules

log = logging.getLogger(__name__)

Colors = Literal["light-on-dark", "dark-on-light"]
_CELLS = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}
_missing_logged = False


def matrix(payload: str) -> list[list[bool]] | None:
    """The code's modules (True = dark) with the quiet zone, or None without segno (or when
    `payload` does not fit a QR code)."""
    global _missing_logged  # noqa: PLW0603 - one log line per process, not per view
    try:
        found = modules(payload)  # segno's encoder, imported on the first code drawn
    except ImportError:
        if not _missing_logged:
            _missing_logged = True
            log.warning("QR codes are shown as text: drawing them needs segno "
                        "(pip install 'cost-agent[qr]')")
        return None
    return [list(row) for row in found] if found is not None else None


@lru_cache(maxsize=8)
def draw(payload: str, colors: Colors = "light-on-dark") -> tuple[str, ...] | None:
    """The code for `payload` as text lines of half blocks, or None without segno."""
    modules = matrix(payload)
    if modules is None:
        return None
    ink_is_dark = colors == "dark-on-light"
    if len(modules) % 2:
        modules.append([False] * len(modules[0]))  # more quiet zone below
    lines = []
    for top, bottom in zip(modules[0::2], modules[1::2], strict=True):
        lines.append("".join(_CELLS[(t == ink_is_dark, b == ink_is_dark)]
                             for t, b in zip(top, bottom, strict=True)))
    return tuple(lines)
