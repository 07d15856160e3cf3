"""QR codes as SVG for the web page: black on white, the standard quiet zone, no fixed size."""

from __future__ import annotations

from functools import lru_cache

from agent.outputs.qrmatrix import modules


@lru_cache(maxsize=16)
def svg(payload: str) -> bytes | None:
    """The code for `payload` as a scalable SVG document, or None when it does not fit a code."""
    rows = modules(payload)
    if rows is None:
        return None
    size = len(rows)
    # One horizontal stroke per run of dark modules, on the module's centre line.
    path = []
    for y, row in enumerate(rows):
        x = 0
        while x < size:
            if row[x]:
                start = x
                while x < size and row[x]:
                    x += 1
                path.append(f"M{start} {y}.5h{x - start}")
            else:
                x += 1
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" '
            f'shape-rendering="crispEdges"><title>QR code</title>'
            f'<path fill="#fff" d="M0 0h{size}v{size}h-{size}z"/>'
            f'<path stroke="#000" d="{"".join(path)}"/></svg>').encode()
