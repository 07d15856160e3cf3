"""The interface every display output implements, and the base of their config tables."""

from __future__ import annotations

import logging
import time
from typing import Annotated, ClassVar, Protocol, runtime_checkable

import msgspec
from msgspec import Meta

from agent.model.view import Estimate, Live, LiveTotal, NextPeriod, Total, View
from agent.structs import Settings

log = logging.getLogger(__name__)

# Every field set, so that what can fail on some value fails at start (a kind's preflight).
SAMPLE_VIEW = View(
    screen="charging", link="up", session_id="S1", status="Running",
    total=Total(1234567, 3, "EUR", "1234.57 EUR"), stale=True, energy_wh=10800,
    prices=["0.39 EUR/kWh", "0.50 EUR"], idle_price="6.00 EUR/h after 30 min",
    next_period=NextPeriod(from_="2026-11-21T12:00:00Z", prices=["0.29 EUR/kWh"]),
    message="Thank you\nfor charging", language="en", qr_code="https://example.com/r/1",
    updated_at="2026-11-21T10:00:00.000Z", preview=["20 kWh: 7.80 EUR"],
    estimate=Estimate(value="1234.5", currency="EUR", text="1234.50 EUR"), final=False,
    evse=1, evse_id="DE*PNX*E12345*1", meter_public_key="3059301306072A8648CE3D0201",
    live=Live(energy_wh=10950, power_w=7400, duration_s=3909, state="Charging"),
    live_total=LiveTotal(value=1235000, decimals=3, currency="EUR", text="≈ 1235.00 EUR"))


class Unusable(Exception):
    """A kind's preflight: the output could not work as configured (`key` names the key)."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(problem)
        self.key = key


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
    """Per-output counters for the status file; the one bookkeeping of an output's failures
    (its worker's, or the web server's own)."""

    ok: int = 0
    failed: int = 0
    # The newest attempt failed (retrying); false again after the next success.
    failing: bool = False
    last_error: str | None = None
    last_error_at: str | None = None
    # Seconds its current call (open, show, repaint) has been running, once past the output's
    # limit; None while it answers in time. The rest of the agent goes on meanwhile.
    stuck_s: float | None = None

    def failure(self, name: str, text: str, counted: bool = True) -> None:
        """The output is failing with `text` (`counted`: one more failure); logged once per
        distinct failure, not once per retry."""
        if not self.failing or text != self.last_error:
            log.warning("output %s: %s", name, text)
        if counted:
            self.failed += 1
        self.failing = True
        self.last_error = text
        self.last_error_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def success(self, name: str) -> None:
        """The newest attempt worked: the output recovered if it was failing (logged)."""
        if self.failing:
            log.info("output %s: recovered", name)
            self.failing = False


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


@runtime_checkable
class Publisher(Protocol):
    """An output that publishes on the agent's broker (`mqtt`): before it runs, the runtime
    lends it the connection and its display's default topic."""

    def bind(self, broker: Broker, default_topic: str) -> None:
        """Publish through `broker`, to `default_topic` unless the config names one."""


class Broker(Protocol):
    """The agent's broker connection, as the runtime lends it to a Publisher."""

    @property
    def connection(self) -> int:
        """Counts connections: a new value means a new connection (retained views re-sent)."""

    def publish_retained(self, topic: str, payload: bytes) -> bool:
        """Publish QoS 1, retained; False while the broker is not connected."""


class OutputKind(Protocol):
    """What a built-in output module or a `cost_agent.outputs` entry point provides.

    A kind may also provide `preflight(config)`, run at start and by `check-config`: it
    raises Unusable(key, problem) for what the output would fail on (a missing library, a
    template that cannot render, a file it names), so that the agent exits 2 naming the key.
    """

    CONFIG: type[OutputConfig]

    def create(self, config: OutputConfig) -> Output | StationOutput:
        """Build an output from its validated config table (a StationOutput when its config
        class says STATION)."""
