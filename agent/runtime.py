"""The agent process. One TaskGroup owns every task: the broker link, the communication check,
the clock, persistence, status, systemd's watchdog, the output workers and the pricing fetch.
A clean stop returns 0; an unexpected exception in any task is logged once with its traceback,
stops the rest cleanly and returns 1, so that systemd (Restart=on-failure) starts it again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from agent import logs, preflight
from agent.config import Config
from agent.display import DisplayModel, Event, LinkChanged, PricingChanged, State, Tick
from agent.messages import TOPICS, Cleared, DecodeError, Heartbeat, SessionCost, TariffMessage
from agent.messages import decode as decode_session_cost
from agent.messages import encode_communication_check as check_payload
from agent.mqtt import Connection, MqttError
from agent.outputs.base import OutputConfig
from agent.outputs.registry import load_kind
from agent.persist import SnapshotKeeper, write_atomic
from agent.sdnotify import Notifier
from agent.status import BrokerStats, Counters, wall_clock_text
from agent.supervise import ApiWatch, ReconnectPacer
from agent.timers import wait_event
from agent.view import View, same_content
from agent.workers import OutputWorker

if TYPE_CHECKING:
    from agent.pricing.live import LivePricing

log = logging.getLogger(__name__)

STOP_FLUSH_S = 0.3


class _Stopped(Exception):
    """Ends the task group after a clean stop."""


class Agent:
    """Owns every task of the running agent; run() returns the process exit status."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.model = DisplayModel(config.display)
        self.state = State()
        self.view: View | None = None
        self.loop = asyncio.get_running_loop()
        self.counters = Counters(self.loop.time())
        self.notifier = Notifier()
        self.workers = [self._worker(i, oc) for i, oc in enumerate(config.output)]
        mqtt = config.mqtt
        # Both were validated by check-config's rules at load; reading them here again keeps
        # a file changed since then a one-line configuration error (exit 2), not a traceback.
        self._password = preflight.read_password(mqtt)
        self._tls = preflight.ssl_context(mqtt.tls) if mqtt.tls is not None else None
        self.client_id = (mqtt.client_id or
                          f"cost-agent-{config.everest.module_id}-{os.getpid()}")[:64]
        base = config.everest.base()
        self.session_api = ApiWatch("session_cost", base, config.watchdog.heartbeat_timeout_s)
        self.watches = [self.session_api]
        self._routes: dict[str, Callable[[bytes, float], None]] = {
            base + "e2m/" + name: self._session_cost_api(name) for name in TOPICS}
        self.pacer = ReconnectPacer(mqtt.reconnect_max_s, mqtt.connect_timeout_s,
                                    config.watchdog.everest_check_timeout_s)
        self.broker = BrokerStats()
        self.conn: Connection | None = None
        self.keeper = SnapshotKeeper(config.state.dir, config.display.finished_hold_s)
        self._late_logged = 0
        self._wake_clock = asyncio.Event()
        self._wake_check = asyncio.Event()
        self._stop = asyncio.Event()
        self.failed = False
        self._tg: asyncio.TaskGroup | None = None
        self._persist_task: asyncio.Task[None] | None = None
        self._pricing_fetch: asyncio.Task[None] | None = None
        self.pricing: LivePricing | None = None
        if config.pricing is not None and config.pricing.enabled:
            # Imported only when configured: the HTTP client stack costs RAM on a small board.
            from agent.pricing.live import LivePricing

            self.pricing = LivePricing(config.pricing, config.state.dir, config.display)

    @staticmethod
    def _worker(index: int, oc: OutputConfig) -> OutputWorker:
        kind = str(oc.__struct_config__.tag)
        output = load_kind(kind).create(oc)
        return OutputWorker.for_config(oc.name or f"{kind}[{index}]", output, oc)

    # ---- lifecycle ---------------------------------------------------------------------

    async def run(self) -> int:
        """Run until stop(); 0 after a clean stop, 1 when a task of the agent failed."""
        self.state = await self.keeper.restore(self.model, self.state, self.loop.time(),
                                               time.time())
        if self.pricing is not None:
            self.apply(PricingChanged(preview=self.pricing.preview()), self.loop.time(),
                       publish=False)
        self._publish_view()
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                for worker in self.workers:
                    self._spawn(f"output:{worker.name}", worker.run)
                self._persist_task = self._spawn("persist", self.keeper.run)
                self._spawn("mqtt", self._mqtt)
                self._spawn("communication-check", self._communication_check)
                self._spawn("clock", self._clock)
                if self.config.status.path:
                    self._spawn("status", self._status_loop)
                interval = self.notifier.watchdog_interval()
                if interval is not None:
                    self._spawn("sd-watchdog", lambda: self._sd_watchdog(interval))
                self._spawn("stop", self._until_stopped)
                self.notifier.send(READY="1", STATUS="running, link down")
                log.info("running: module_id=%s broker=%s:%s outputs=%d",
                         self.config.everest.module_id, self.config.mqtt.host,
                         self.config.mqtt.port, len(self.workers))
        except* _Stopped:
            pass
        except* Exception:
            self.failed = True  # each failure was logged with its traceback where it happened
        finally:
            self._tg = None
        await self._shutdown()
        return 1 if self.failed else 0

    def _spawn(self, name: str, body: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        assert self._tg is not None
        return self._tg.create_task(self._owned(name, body), name=name)

    async def _owned(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        try:
            await body()
        except (_Stopped, asyncio.CancelledError):
            raise
        except Exception:
            if not self.failed:
                self.notifier.send(STATUS=f"failed: task {name}")
            self.failed = True
            log.exception("task %s failed; stopping the agent", name)
            raise

    def stop(self) -> None:
        """Ask run() to stop cleanly."""
        self._stop.set()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop the agent cleanly."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self.stop)

    async def _until_stopped(self) -> None:
        await self._stop.wait()
        self.notifier.send(STOPPING="1", STATUS="stopping")
        conn = self.conn
        if self.config.watchdog.stop_check_on_exit and conn is not None:
            # `false` ends EVerest's supervision for good (until EVerest restarts).
            for watch in self.watches:
                conn.publish(watch.check_topic, check_payload(False))
        await asyncio.gather(*(w.flush(STOP_FLUSH_S) for w in self.workers))
        raise _Stopped

    async def _shutdown(self) -> None:
        # The single writer saves last: after any write still in flight from a cancelled save.
        self.keeper.request(self.state, self.loop.time(), time.time())
        self.keeper.close()
        await self.keeper.run()
        if self.config.status.path:
            await self._write_status()
        self.notifier.close()
        log.info("stopped" if not self.failed else "stopped after a failure (exit status 1)")

    # ---- the broker link ---------------------------------------------------------------

    async def _mqtt(self) -> None:
        topics = list(self._routes)
        while True:
            conn = Connection(self.config.mqtt, self.client_id, topics, password=self._password,
                              tls=self._tls, timeout_s=self.pacer.timeout(self.loop.time()))
            reason = "connection ended"
            try:
                async with conn:
                    self._connected(conn)
                    routes, loop = self._routes, self.loop
                    async for topic, payload in conn.messages():
                        route = routes.get(topic)
                        if route is not None:
                            route(payload, loop.time())
            except MqttError as exc:
                reason = str(exc)
            finally:
                self._disconnected(conn)
            now = self.loop.time()
            self.pacer.down(now)
            delay = self.pacer.delay(now)
            if reason != self.broker.last_error:  # each distinct cause once, not every retry
                log.warning("broker %s: %s; retrying in %.1f s", conn.where, reason, delay)
            self.broker.last_error = reason
            await asyncio.sleep(delay)

    def _connected(self, conn: Connection) -> None:
        now = self.loop.time()
        self.conn = conn
        self.pacer.up(now)
        self.broker.connected = True
        self.broker.reconnects += 1 if self.broker.connects else 0
        self.broker.connects += 1
        self.broker.last_error = None
        log.info("connected to %s", conn.where)
        for watch in self.watches:
            watch.connected(now)
        self._wake_check.set()  # the first check goes out at once
        self._link_changed(now)

    def _disconnected(self, conn: Connection) -> None:
        if self.conn is not conn:
            return
        self.conn = None
        self.broker.connected = False
        self.broker.dropped += conn.dropped
        self._link_changed(self.loop.time())

    # ---- input -------------------------------------------------------------------------

    def _session_cost_api(self, name: str) -> Callable[[bytes, float], None]:
        counters = self.counters
        limit = self.config.mqtt.max_payload_bytes

        def on_payload(payload: bytes, now: float) -> None:
            if not payload:
                # A retained message was cleared (zero bytes): nothing to show, nothing wrong.
                counters.cleared[name] += 1
                return
            counters.received[name] += 1
            if len(payload) > limit:
                counters.reject(name, f"payload of {len(payload)} bytes exceeds {limit}",
                                payload[:200], now)
                return
            try:
                msg = decode_session_cost(name, payload)
            except DecodeError as exc:
                counters.reject(name, exc.reason, payload, now)
                return
            match msg:
                case Heartbeat():
                    self._heartbeat(self.session_api, msg.id, now)
                case Cleared():
                    pass
                case _:
                    self._display_message(msg, now)
        return on_payload

    def _display_message(self, msg: SessionCost | TariffMessage | Event, now: float) -> None:
        if self.pricing is None:
            self.apply(msg, now)
            return
        self.apply(msg, now, publish=False)
        if isinstance(msg, SessionCost):
            self.apply(PricingChanged(preview=self.state.preview,
                                      estimate=self.pricing.estimate(msg)), now, publish=False)
        elif isinstance(msg, TariffMessage) and msg.identifier_type == "IdToken" and (
                msg.identifier_id):
            self._fetch_rate(msg.identifier_id)
        self._publish_view()

    def _fetch_rate(self, tag_id: str) -> None:
        """Ask the pricing API for this token's Rate in the background (newest token wins)."""
        if self.pricing is None or not self.pricing.config.api_url or self._tg is None:
            return
        if self._pricing_fetch is not None:
            self._pricing_fetch.cancel()
        self._pricing_fetch = self._spawn("pricing-fetch", lambda: self._authorized(tag_id))

    async def _authorized(self, tag_id: str) -> None:
        assert self.pricing is not None
        if await self.pricing.authorize(tag_id):
            self.apply(PricingChanged(preview=self.pricing.preview(),
                                      estimate=self.state.estimate), self.loop.time())

    def _heartbeat(self, watch: ApiWatch, beat: int, now: float) -> None:
        verdict, back = watch.beat(beat, now)
        if verdict == "restart":
            log.warning("EVerest restarted (%s heartbeat id went back to %d)", watch.name, beat)
        if back:
            log.info("%s heartbeat back (id %d)", watch.name, beat)
            self._link_changed(now)
            self._wake_clock.set()
        # Otherwise the beat only moved the deadline later: the clock re-reads it when the old
        # one comes. Waking it on every beat was half the CPU a heartbeat costs.

    def link_up(self) -> bool:
        """The EVerest link: broker connected and (if supervised) heartbeats arriving."""
        return self.conn is not None and self.session_api.ok

    def _link_changed(self, now: float) -> None:
        up = self.link_up()
        self.notifier.send(STATUS=f"running, link {'up' if up else 'down'}")
        if up != self.state.link_up:
            log.info("EVerest link %s", "up" if up else "down")
        self.apply(LinkChanged(up=up), now)

    def apply(self, event: Event, now: float, publish: bool = True) -> None:
        """Feed one event to the display model and push a changed view to the outputs."""
        new = self.model.update(self.state, event, now)
        if new is self.state:
            return
        if new.late_results > self._late_logged and isinstance(event, SessionCost):
            self._late_logged = new.late_results
            log.warning("ignored a late %s session_cost of session %s: session %s is on screen",
                        event.status, event.session_id,
                        self.state.session.session_id if self.state.session else None)
        self.state = new
        self.keeper.request(new, now, time.time())
        if publish:
            self._publish_view()
        self._wake_clock.set()

    def _publish_view(self) -> None:
        view = self.model.view(self.state)
        if same_content(view, self.view):
            return
        self.view = msgspec.structs.replace(view, updated_at=wall_clock_text())
        for worker in self.workers:
            worker.submit(self.view)

    # ---- timers (all on the loop's monotonic clock) ------------------------------------

    async def _communication_check(self) -> None:
        interval = self.config.watchdog.communication_check_interval_s
        alive = check_payload(True)
        while True:
            conn = self.conn
            if conn is not None:
                for watch in self.watches:
                    if conn.publish(watch.check_topic, alive):
                        watch.checks_sent += 1
            self._wake_check.clear()
            await wait_event(self._wake_check, interval)

    async def _clock(self) -> None:
        while True:
            connected = self.conn is not None
            deadlines = [d for d in (self.model.next_deadline(self.state),
                                     *(w.deadline(connected) for w in self.watches))
                         if d is not None]
            self._wake_clock.clear()
            timeout = max(0.0, min(deadlines) - self.loop.time()) if deadlines else None
            await wait_event(self._wake_clock, timeout)
            now = self.loop.time()
            for watch in self.watches:
                if watch.expire(now, self.conn is not None):
                    log.warning("no %s heartbeat for %.1f s: EVerest link down", watch.name,
                                watch.timeout_s)
                    self._link_changed(now)
            self.apply(Tick(), now)

    async def _sd_watchdog(self, interval: float) -> None:
        # A failed task cancels this one with the rest: systemd's watchdog is then starved.
        while True:
            self.notifier.send(WATCHDOG="1")
            await asyncio.sleep(interval)

    # ---- status ------------------------------------------------------------------------

    async def _status_loop(self) -> None:
        while True:
            await self._write_status()
            await asyncio.sleep(self.config.status.interval_s)

    def status_document(self) -> dict[str, object]:
        """What the status file holds."""
        self.counters.communication_checks_sent = self.session_api.checks_sent
        return self.counters.snapshot(
            self.loop.time(), self.session_api.tracker,
            link="up" if self.link_up() else "down", broker=self.broker,
            screen=self.view.screen if self.view else None,
            outputs={w.name: w.stats for w in self.workers},
            pricing=self.pricing.stats() if self.pricing is not None else None,
            late_session_costs=self.state.late_results, log_dropped=logs.dropped())

    async def _write_status(self) -> None:
        data = msgspec.json.encode(self.status_document())
        try:
            await asyncio.to_thread(_write_status_file, self.config.status.path, data)
        except OSError as exc:
            log.warning("status file %s: %s", self.config.status.path, exc)


def _write_status_file(path: str, data: bytes) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data + b"\n", durable=False)
