"""The interface every display output implements, and the base of their config tables."""

from __future__ import annotations

from typing import Annotated, ClassVar, Protocol

import msgspec
from msgspec import Meta

from agent.model.view import View
from agent.structs import Settings


class OutputConfig(Settings, kw_only=True,
                   tag_field="type"):
    """Keys common to every `[[output]]` table; each kind subclasses it with `tag="<type>"`."""

    name: str = ""
    # With [[evse]] tables: the id of the EVSE this display shows (required with several).
    evse: Annotated[int, Meta(ge=1)] | None = None
    # Worker retry after a failed open/show: doubles from 0.1 s up to this cap.
    retry_max_s: float = msgspec.field(default=0.5)
    # A kind that serves every display of the station at once (the web page) takes no `evse`.
    STATION: ClassVar[bool] = False


class OutputStats(msgspec.Struct):
    """Per-output counters for the status file."""

    ok: int = 0
    failed: int = 0
    # The newest attempt failed (retrying); false again after the next success.
    failing: bool = False
    last_error: str | None = None
    last_error_at: str | None = None
    # Seconds its current call (open, show, repaint) has been running, once past the output's
    # limit; None while it answers in time. The rest of the agent goes on meanwhile.
    stuck_s: float | None = None


class Output(Protocol):
    """A display sink. The runtime calls open once, show per view change, close on stop.

    show() may raise: the runtime counts the failure, calls close(), and after a backoff calls
    open() and show() again with the newest view. Blocking I/O must not run on the event loop.
    """

    async def open(self) -> None:
        """Acquire the device (idempotent after close)."""

    async def show(self, view: View) -> None:
        """Put this view on the display."""

    async def close(self) -> None:
        """Release the device; must not raise."""


class Repaintable(Protocol):
    """An output that can put the whole current view on the display again.

    Kinds whose display can lose its content on its own (it rebooted, was replugged, was
    power-cycled) implement this and have a `refresh_s` key in their config (default 30, 0
    disables): the worker calls repaint() with the view last shown every `refresh_s`, and
    the output re-initialises the device and rewrites everything (no differential update).
    A failure is handled like a failed show().
    """

    async def repaint(self, view: View) -> None:
        """Re-initialise the display and write `view` in full."""


class Watched(Protocol):
    """An output whose device can be lost or replaced while nothing is being shown.

    While the worker is idle with the view shown, it runs watch(), which returns only by
    raising (device hung up, or another device behind the configured path); the worker then
    handles it like a failed show(), so the display that came back gets the whole view.
    """

    async def watch(self) -> None:
        """Raise when the device was lost or replaced; cancelled when there is work."""


class StationOutput(Protocol):
    """An output that serves every display of the station at once (`type = "web"`).

    The runtime hands it each display's newest view with update() (which must not block) and
    runs serve() in its task group until the agent stops; serve() keeps its own failures (a
    port in use) in `stats` and retries, and raises only for a bug.
    """

    name: str

    @property
    def stats(self) -> OutputStats:
        """Its counters for the status file."""

    def update(self, evse: int | None, view: View) -> None:
        """Take the newest view of one display (`evse` None: the station's one display)."""

    async def serve(self) -> None:
        """Serve until cancelled."""


class OutputKind(Protocol):
    """What a built-in output module or a `cost_agent.outputs` entry point provides."""

    CONFIG: type[OutputConfig]

    def create(self, config: OutputConfig) -> Output | StationOutput:
        """Build an output from its validated config table (a StationOutput when its config
        class says STATION)."""
