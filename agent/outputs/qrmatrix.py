"""QR code modules from segno's encoder alone (the `qr` and `web` extras).

`import segno` also imports its writers, which import `xml.sax.saxutils`, which imports
`urllib.request`, `http.client` and `email`: 3.96 MiB of RSS on a board (bench/lazy_imports.py)
that an agent drawing QR codes on its own never uses. segno's encoder needs only its constants
module, so it is loaded from segno's folder under a package name of its own, without running
segno's `__init__` (a real `import segno` elsewhere in the process is not affected).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from functools import lru_cache
from typing import Any

_PACKAGE = "_cost_agent_segno"
QUIET_ZONE = 4


def encoder() -> Any:
    """segno's `encoder` module; ImportError without segno."""
    spec = importlib.util.find_spec("segno")  # None also where segno is blocked (tests)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("No module named 'segno'", name="segno")
    loaded = sys.modules.get(f"{_PACKAGE}.encoder")
    if loaded is not None:
        return loaded
    package = types.ModuleType(_PACKAGE)
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules[_PACKAGE] = package
    return importlib.import_module(f"{_PACKAGE}.encoder")


def modules(payload: str) -> tuple[tuple[bool, ...], ...] | None:
    """The code's modules (True = dark) with the 4-module quiet zone; None when `payload` does
    not fit a QR code. Error correction M, the smallest version that fits, as segno.make_qr.
    ImportError without segno."""
    return _modules(encoder(), payload)


@lru_cache(maxsize=8)
def _modules(segno: Any, payload: str) -> tuple[tuple[bool, ...], ...] | None:
    try:
        code = segno.encode(payload, error="m", micro=False)
    except segno.DataOverflowError:
        return None
    size = len(code.matrix) + 2 * QUIET_ZONE
    blank = (False,) * size
    side = (False,) * QUIET_ZONE
    rows = [blank] * QUIET_ZONE
    rows += [side + tuple(bool(m & 1) for m in row) + side for row in code.matrix]
    rows += [blank] * QUIET_ZONE
    return tuple(rows)
