"""GPIO line backends: the interface the gpio output drives, and the libgpiod v2 adapter.

`gpiod` (libgpiod v2 Python bindings, the `gpio` extra) is imported only inside
`open_gpiod()`, so nothing loads it unless a gpio output is configured. Tests drive the gpio
output through the same `Backend` interface with a fake.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

CONSUMER = "cost-agent"


class Backend(Protocol):
    """Output lines requested from one chip; values are logical (True = active)."""

    def set(self, values: Mapping[int, bool]) -> None:
        """Drive these lines (by offset) to these logical values."""

    def release(self) -> None:
        """Give the lines back to the kernel; must not raise."""


class Opener(Protocol):
    """Requests `offsets` of `chip` as outputs, initially inactive."""

    def __call__(self, chip: str, offsets: Sequence[int], *, active_low: bool,
                 consumer: str) -> Backend:
        """Request the lines or raise (OSError, or a gpiod error)."""


class GpiodBackend:
    """A libgpiod v2 `LineRequest` behind the Backend interface."""

    def __init__(self, request: Any, value_type: Any) -> None:
        self._request = request
        self._active = value_type.ACTIVE
        self._inactive = value_type.INACTIVE

    def set(self, values: Mapping[int, bool]) -> None:
        """One `set_values` call for all lines."""
        self._request.set_values(
            {offset: self._active if on else self._inactive for offset, on in values.items()})

    def release(self) -> None:
        """Release the request (idempotent)."""
        with contextlib.suppress(Exception):  # already released, or the chip went away
            self._request.release()


def check_gpiod() -> None:
    """Raise RuntimeError unless the libgpiod v2 Python bindings can be imported."""
    try:
        import gpiod  # only when a gpio output is configured
        import gpiod.line
    except ImportError as exc:
        raise RuntimeError(
            "gpio output needs the libgpiod v2 Python bindings: pip install 'cost-agent[gpio]' "
            f"({exc})") from None
    if not hasattr(gpiod, "request_lines"):
        raise RuntimeError(f"gpio output needs libgpiod v2 bindings; found gpiod "
                           f"{getattr(gpiod, '__version__', '1.x')}")


def open_gpiod(chip: str, offsets: Sequence[int], *, active_low: bool,
               consumer: str = CONSUMER) -> GpiodBackend:
    """Request the lines through libgpiod v2 (`gpiod.request_lines`)."""
    check_gpiod()
    import gpiod
    from gpiod.line import Direction, Value

    settings = gpiod.LineSettings(direction=Direction.OUTPUT, active_low=active_low,
                                  output_value=Value.INACTIVE)
    request = gpiod.request_lines(chip, consumer=consumer, config={tuple(offsets): settings})
    return GpiodBackend(request, Value)
