"""The agent process: MQTT in, display model, outputs, watchdogs, status, persistence."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from agent.config import Config, read_secret
from agent.display import DisplayModel, Event, LinkChanged, PricingChanged, State, Tick
from agent.messages import Cleared, DecodeError, Heartbeat, SessionCost, TariffMessage, decode
from agent.messages import encode_communication_check as check_payload
from agent.mqtt import MqttLink
from agent.outputs.base import OutputConfig
from agent.outputs.registry import load_kind
from agent.persist import SnapshotKeeper, write_atomic
from agent.sdnotify import Notifier
from agent.status import Counters, wall_clock_text
from agent.view import View, same_content
from agent.workers import OutputWorker

if TYPE_CHECKING:
    from agent.pricing.live import LivePricing

log = logging.getLogger(__name__)

STOP_FLUSH_S = 0.3


class Agent:
    """Owns every task of the running agent; run() returns after a clean stop."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.model = DisplayModel(config.display)
        self.state = State()
        self.view: View | None = None
        self.base = config.everest.base()
        self.loop = asyncio.get_running_loop()
        self.counters = Counters(self.loop.time())
        self.notifier = Notifier()
        self.workers = [self._worker(i, oc) for i, oc in enumerate(config.output)]
        password = None
        if config.mqtt.password_file:
            password = read_secret(config.mqtt.password_file, "mqtt.password_file")
        client_id = config.mqtt.client_id or f"cost-agent-{config.everest.module_id}-{os.getpid()}"
        self.link = MqttLink(config.mqtt, client_id[:64],
                             [self.base + "e2m/" + t for t in
                              ("default_price", "tariff_message", "session_cost", "heartbeat")],
                             self._on_message, self._on_connection, password)
        self.heartbeat_ok = True
        self._heartbeat_since = self.loop.time()
        self._wake_clock = asyncio.Event()
        self._wake_check = asyncio.Event()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.keeper = SnapshotKeeper(config.state.dir, config.display.finished_hold_s)
        self._late_logged = 0
        self.pricing: LivePricing | None = None
        if config.pricing is not None and config.pricing.enabled:
            # Imported only when configured: the HTTP client stack costs RAM on a small board.
            from agent.pricing.live import LivePricing

            self.pricing = LivePricing(config.pricing, config.state.dir, config.display)
        self._pricing_fetch: asyncio.Task[None] | None = None

    @staticmethod
    def _worker(index: int, oc: OutputConfig) -> OutputWorker:
        kind = str(oc.__struct_config__.tag)
        output = load_kind(kind).create(oc)
        return OutputWorker(oc.name or f"{kind}[{index}]", output, oc.retry_max_s)

    # ---- lifecycle ---------------------------------------------------------------------

    async def run(self) -> None:
        """Run until stop() (or SIGTERM/SIGINT when installed by the caller)."""
        self.state = await self.keeper.restore(self.model, self.state, self.loop.time(),
                                               time.time())
        if self.pricing is not None:
            self.apply(PricingChanged(preview=self.pricing.preview()), self.loop.time(),
                       publish=False)
        for worker in self.workers:
            worker.start()
        self._publish_view()
        spawn = self._tasks.append
        spawn(asyncio.create_task(self.link.run(), name="mqtt"))
        spawn(asyncio.create_task(self._communication_check(), name="communication-check"))
        spawn(asyncio.create_task(self._clock(), name="clock"))
        spawn(asyncio.create_task(self._persist(), name="persist"))
        if self.config.status.path:
            spawn(asyncio.create_task(self._status_loop(), name="status"))
        interval = self.notifier.watchdog_interval()
        if interval is not None:
            spawn(asyncio.create_task(self._sd_watchdog(interval), name="sd-watchdog"))
        self.notifier.send(READY="1", STATUS="running, link down")
        log.info("running: module_id=%s broker=%s:%s outputs=%d", self.config.everest.module_id,
                 self.config.mqtt.host, self.config.mqtt.port, len(self.workers))
        stop = asyncio.create_task(self._stop.wait(), name="stop-wait")
        try:
            await asyncio.wait([stop, *self._tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in self._tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    log.error("task %s failed: %r", task.get_name(), task.exception())
        finally:
            stop.cancel()
            await self._shutdown()

    def stop(self) -> None:
        """Ask run() to stop cleanly."""
        self._stop.set()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop the agent cleanly."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self.stop)

    async def _shutdown(self) -> None:
        self.notifier.send(STOPPING="1", STATUS="stopping")
        # `false` ends EVerest's supervision for good (until EVerest restarts): only on request.
        final = ([(self.base + "m2e/communication_check", check_payload(False))]
                 if self.config.watchdog.stop_check_on_exit else [])
        await self.link.close(final)
        if self._pricing_fetch is not None:
            self._tasks.append(self._pricing_fetch)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(w.flush(STOP_FLUSH_S) for w in self.workers))
        await asyncio.gather(*(w.stop() for w in self.workers))
        self.keeper.request(self.state, self.loop.time(), time.time())
        self.keeper.close()
        await self.keeper.run()
        if self.config.status.path:
            await self._write_status()
        self.notifier.close()
        log.info("stopped")

    # ---- input -------------------------------------------------------------------------

    def _on_message(self, topic: str, payload: bytes) -> None:
        name = topic.removeprefix(self.base + "e2m/")
        if name not in self.counters.received:
            return
        now = self.loop.time()
        if not payload:
            # A retained message was cleared (zero bytes): nothing to show, nothing wrong.
            self.counters.cleared[name] += 1
            return
        self.counters.received[name] += 1
        if len(payload) > self.config.mqtt.max_payload_bytes:
            self.counters.reject(name, f"payload of {len(payload)} bytes exceeds "
                                 f"{self.config.mqtt.max_payload_bytes}", payload[:200], now)
            return
        try:
            msg = decode(name, payload)
        except DecodeError as exc:
            self.counters.reject(name, exc.reason, payload, now)
            return
        if isinstance(msg, Cleared):
            return
        if isinstance(msg, Heartbeat):
            self._on_heartbeat(msg.id, now)
            return
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
        if self.pricing is None or not self.pricing.config.api_url:
            return
        if self._pricing_fetch is not None:
            self._pricing_fetch.cancel()
        self._pricing_fetch = asyncio.create_task(self._authorized(tag_id), name="pricing-fetch")

    async def _authorized(self, tag_id: str) -> None:
        assert self.pricing is not None
        if await self.pricing.authorize(tag_id):
            self.apply(PricingChanged(preview=self.pricing.preview(),
                                      estimate=self.state.estimate), self.loop.time())

    def _on_heartbeat(self, beat: int, now: float) -> None:
        verdict = self.counters.heartbeat.observe(beat)
        if verdict == "restart":
            log.warning("EVerest restarted (heartbeat id went back to %d)", beat)
        self._heartbeat_since = now
        if not self.heartbeat_ok:
            log.info("heartbeat back (id %d)", beat)
            self.heartbeat_ok = True
            self._link_changed(now)
        self._wake_clock.set()

    def _on_connection(self, connected: bool) -> None:
        now = self.loop.time()
        if connected:
            # The heartbeat timeout counts from the connection until the first heartbeat.
            self._heartbeat_since = now
            self.heartbeat_ok = True
            self._wake_check.set()
        self._link_changed(now)
        self._wake_clock.set()

    def link_up(self) -> bool:
        """The EVerest link: broker connected and (if supervised) heartbeats arriving."""
        return self.link.connected and self.heartbeat_ok

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
        if new.late_results > self._late_logged:
            self._late_logged = new.late_results
            if isinstance(event, SessionCost):
                log.warning("ignored a late %s session_cost of session %s: session %s is on "
                            "screen", event.status, event.session_id,
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
        topic = self.base + "m2e/communication_check"
        while True:
            if self.link.publish(topic, check_payload(True)):
                self.counters.communication_checks_sent += 1
            self._wake_check.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake_check.wait(), interval)

    def _heartbeat_deadline(self) -> float | None:
        timeout = self.config.watchdog.heartbeat_timeout_s
        if timeout <= 0 or not self.link.connected or not self.heartbeat_ok:
            return None
        return self._heartbeat_since + timeout

    async def _clock(self) -> None:
        while True:
            deadlines = [d for d in (self.model.next_deadline(self.state),
                                     self._heartbeat_deadline()) if d is not None]
            self._wake_clock.clear()
            timeout = max(0.0, min(deadlines) - self.loop.time()) if deadlines else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake_clock.wait(), timeout)
            now = self.loop.time()
            hb_deadline = self._heartbeat_deadline()
            if hb_deadline is not None and now >= hb_deadline:
                log.warning("no heartbeat for %.1f s: EVerest link down",
                            self.config.watchdog.heartbeat_timeout_s)
                self.heartbeat_ok = False
                self._link_changed(now)
            self.apply(Tick(), now)

    async def _sd_watchdog(self, interval: float) -> None:
        while True:
            # Only a loop that runs and whose tasks are alive may keep systemd's watchdog fed.
            if all(not t.done() for t in self._tasks):
                self.notifier.send(WATCHDOG="1")
            await asyncio.sleep(interval)

    # ---- status and persistence --------------------------------------------------------

    async def _status_loop(self) -> None:
        while True:
            await self._write_status()
            await asyncio.sleep(self.config.status.interval_s)

    def status_document(self) -> dict[str, object]:
        """What the status file holds."""
        return self.counters.snapshot(
            self.loop.time(),
            link="up" if self.link_up() else "down",
            broker={"connected": self.link.connected, "reconnects": self.link.reconnects,
                    "last_error": self.link.last_error},
            screen=self.view.screen if self.view else None,
            outputs={w.name: w.stats for w in self.workers},
            pricing=self.pricing.stats() if self.pricing is not None else None,
            late_session_costs=self.state.late_results)

    async def _persist(self) -> None:
        await self.keeper.run()

    async def _write_status(self) -> None:
        data = msgspec.json.encode(self.status_document())
        try:
            await asyncio.to_thread(_write_status_file, self.config.status.path, data)
        except OSError as exc:
            log.warning("status file %s: %s", self.config.status.path, exc)

def _write_status_file(path: str, data: bytes) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data + b"\n", durable=False)
