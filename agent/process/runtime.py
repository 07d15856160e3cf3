"""The agent process. One crew (a TaskGroup, crew.py) owns every task: the broker link, the
communication check, the clock, persistence, status, systemd's watchdog, the output workers and
the pricing fetch. A clean stop returns 0; an unexpected exception in any task is logged once
with its traceback, stops the rest cleanly and returns 1, so that systemd (Restart=on-failure)
starts it again; so does a stop that a task holds past its limit.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from agent.everest.session_cost import DefaultPrice, SessionCost, TariffMessage
from agent.everest.session_cost import encode_communication_check as check_payload
from agent.lanes import Lane
from agent.model.state import Event, LinkChanged, Tick
from agent.process.crew import Crew, Stopped
from agent.process.inbox import Handler, Inbox
from agent.process.link import BrokerLink, Route
from agent.process.panel import Panel, build_panels
from agent.process.sdnotify import Notifier
from agent.process.status import Counters
from agent.process.status_writer import StatusWriter
from agent.process.supervise import ApiWatch
from agent.process.timers import wait_event
from agent.settings.config import Config

if TYPE_CHECKING:
    from agent.process.display_messages import MessageDesk
    from agent.process.pricing_desk import PricingDesk

log = logging.getLogger(__name__)
# Threads of the default executor (only the asyncio loop's getaddrinfo uses it): see __init__.
IO_THREADS = 1

STOP_FLUSH_S = 0.3
# The final writes' time when the tasks' stop took all of the limit (they take milliseconds).
FINAL_WRITES_MIN_S = 1.0


class Agent(StatusWriter):
    """Owns every task of the running agent; run() returns the process exit status."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.loop = asyncio.get_running_loop()
        # The agent's own blocking calls each go to their owner's lane (agent/lanes.py), so one
        # stuck call holds nobody else; the default executor serves only the asyncio loop's
        # name lookups, and would otherwise start up to cpu+4 threads.
        self.loop.set_default_executor(
            ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="io"))
        self.counters = Counters(self.loop.time())
        self.status_lane = Lane("status")
        self.notifier = Notifier()
        self.crew = Crew(self.loop, self.notifier, config.watchdog.stop_limit_s)
        # `stations`: the outputs that serve every display (the web page), each run once.
        self.workers, self.stations, self.panels = build_panels(config)
        client_id = (config.mqtt.client_id or
                     f"cost-agent-{config.everest.module_id}-{os.getpid()}")[:64]
        self.session_api = ApiWatch("session_cost", config.everest.base(),
                                    config.watchdog.heartbeat_timeout_s)
        self.watches = [self.session_api, *(p.watch for p in self.panels if p.watch)]
        self.inbox = Inbox(config, self.panels, self.session_api, self.counters,
                           self.loop.time())
        routes: dict[str, Route] = {topic: functools.partial(self._receive, handler)
                                    for topic, handler in self.inbox.routes.items()}
        self.desk: MessageDesk | None = None
        if config.display_messages is not None:
            # Imported only when configured: the agent is then EVerest's display too.
            from agent.process.display_messages import MessageDesk

            self.desk = MessageDesk(config, self.loop.time())
            self.watches.append(self.desk.watch)
            for topic, name in self.desk.topics().items():
                routes[topic] = functools.partial(self._display_request, name)
        self.link = BrokerLink(config, client_id, routes, self._link_event)
        self._bind_view_publishers()
        self._wake_clock = asyncio.Event()
        self._wake_check = asyncio.Event()
        self._stop = asyncio.Event()
        self.pricing_desk: PricingDesk | None = None
        if config.pricing is not None and config.pricing.enabled:
            # Imported only when configured: the HTTP client stack costs RAM on a small board.
            from agent.pricing.live import LivePricing
            from agent.process.pricing_desk import PricingDesk

            self.pricing_desk = PricingDesk(LivePricing(config.pricing, config.display),
                                            self.panels, self.loop.time, self._apply,
                                            self.crew.spawn_while_running)

    def _bind_view_publishers(self) -> None:
        """Lend the broker connection to `mqtt` outputs, each with its display's topic."""
        everest = self.config.everest
        for panel in self.panels:
            evse = f"evse/{panel.evse.id}/" if panel.evse is not None else ""
            topic = f"{everest.topic_prefix}cost_agent/{everest.module_id}/{evse}view"
            for worker in panel.workers:
                bind = getattr(worker.output, "bind", None)
                if callable(bind):
                    bind(self.link, topic)

    # ---- lifecycle ---------------------------------------------------------------------

    async def run(self) -> int:
        """Run until stop(); 0 after a clean stop, 1 when a task of the agent failed."""
        for panel in self.panels:
            panel.state = await panel.keeper.restore(panel.model, panel.state, self.loop.time(),
                                                     time.time())
            if self.pricing_desk is not None:
                panel.apply(self.pricing_desk.preview(panel), self.loop.time(), publish=False)
        if self.desk is not None:
            await self.desk.restore()
            self._show_messages(self.loop.time())
        for panel in self.panels:
            panel.publish()
        await self.crew.run(self._start)
        await self._shutdown()
        return 1 if self.failed else 0

    @property
    def failed(self) -> bool:
        """A task of the agent failed (or its stop overran): the exit status will be 1."""
        return self.crew.failed

    def _start(self) -> None:
        spawn = self.crew.spawn
        for worker in self.workers:
            spawn(f"output:{worker.name}", worker.run)
        for station in self.stations:
            spawn(f"output:{station.name}", station.serve)
        for panel in self.panels:
            spawn(f"persist:{panel.name}", panel.keeper.run)
        if self.desk is not None:
            spawn("display-messages", self.desk.keep)
        spawn("mqtt", self.link.run)
        spawn("communication-check", self._communication_check)
        spawn("clock", self._clock)
        if self.config.status.path:
            spawn("status", self._status_loop)
        interval = self.notifier.watchdog_interval()
        if interval is not None:
            spawn("sd-watchdog", lambda: self._sd_watchdog(interval))
        spawn("stop", self._until_stopped)
        self.notifier.send(READY="1", STATUS="running, link down")
        log.info("running: module_id=%s broker=%s:%s outputs=%d",
                 self.config.everest.module_id, self.config.mqtt.host,
                 self.config.mqtt.port, len(self.workers) + len(self.stations))

    def stop(self) -> None:
        """Ask run() to stop cleanly (a task still running STOP_LIMIT_S later is overdue)."""
        self._stop.set()
        self.crew.winding_down()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop the agent cleanly."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self.stop)

    async def _until_stopped(self) -> None:
        await self._stop.wait()
        self.notifier.send(STOPPING="1", STATUS="stopping")
        conn = self.link.conn
        if self.config.watchdog.stop_check_on_exit and conn is not None:
            # `false` ends EVerest's supervision for good (until EVerest restarts).
            for watch in self.watches:
                conn.publish(watch.check_topic, check_payload(False))
        await asyncio.gather(*(w.flush(STOP_FLUSH_S) for w in self.workers))
        raise Stopped

    async def _shutdown(self) -> None:
        writes: dict[str, Coroutine[Any, Any, None]] = {"the final snapshots": self._save_all()}
        if self.desk is not None:
            writes["the display messages' file"] = self.desk.save()
        if self.config.status.path:
            writes["the last status write"] = self._write_status()
        # Side by side, within what is left of the stop limit, whatever a disk is doing: a
        # write cut short leaves the old file whole (each is a rename of a complete temp file;
        # its thread goes on alone). A task that overran the limit (named already) leaves them
        # a moment of their own.
        deadline = max(self.crew.stop_deadline, self.loop.time() + FINAL_WRITES_MIN_S)
        tasks = {asyncio.ensure_future(write): name for name, write in writes.items()}
        try:
            done, late = await asyncio.wait(tasks, timeout=deadline - self.loop.time())
        finally:
            for task in tasks:
                task.cancel()
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.error("%s failed", tasks[task], exc_info=task.exception())
                self.crew.failed = True
        if late:
            await asyncio.wait(late)  # cancelled: they end at once
            log.error("stop overdue: %s not written within %.0f s of the stop's start "
                      "(watchdog.stop_limit_s); exiting without",
                      " and ".join(tasks[task] for task in late), self.crew.stop_limit_s)
            self.crew.failed = True
        self.notifier.close()
        log.info("stopped" if not self.failed else "stopped after a failure (exit status 1)")

    async def _save_all(self) -> None:
        # The single writer saves last: after any write still in flight from a cancelled save.
        for panel in self.panels:
            panel.keeper.request(panel.state, self.loop.time(), time.time())
            panel.keeper.close()
        results = await asyncio.gather(*(p.keeper.run() for p in self.panels),
                                       return_exceptions=True)
        for result in results:
            if isinstance(result, Exception) and not self.failed:  # else logged already
                log.error("final save failed", exc_info=result)
                self.crew.failed = True

    def _link_event(self) -> None:
        """The broker connection came or went."""
        now = self.loop.time()
        if self.link.conn is not None:
            for watch in self.watches:
                watch.connected(now)
            self._wake_check.set()  # the first check goes out at once
        self._link_changed(now)

    # ---- input -------------------------------------------------------------------------

    def _receive(self, handler: Handler, payload: bytes, now: float) -> None:
        """One payload from the broker: apply what the inbox says it means, where it says."""
        for target, item in handler(payload, now):
            if isinstance(target, ApiWatch):
                assert isinstance(item, int)
                self._heartbeat(target, item, now)
            elif isinstance(item, SessionCost | TariffMessage | DefaultPrice):
                if self.pricing_desk is not None:
                    self.pricing_desk.deliver(target, item, now)
                else:
                    self._apply(target, item, now)
            else:
                assert not isinstance(item, int)
                self._apply(target, item, now)

    def _apply(self, panel: Panel, event: Event, now: float, publish: bool = True) -> None:
        """Apply `event` to `panel`; a change may move the next deadline: wake the clock."""
        if panel.apply(event, now, publish):
            self._wake_clock.set()
            if self.desk is not None:
                self._show_messages(now)

    def _display_request(self, name: str, payload: bytes, now: float) -> None:
        """A request (or heartbeat) of EVerest's display_message API."""
        desk = self.desk
        assert desk is not None
        if name == "heartbeat":
            beat = desk.heartbeat(payload, now)
            if beat is not None:
                self._heartbeat(desk.watch, beat, now)
            return
        reply = desk.request(name, payload, now, desk.sessions(self.panels, self.inbox.router))
        conn = self.link.conn
        if reply is not None and conn is not None:
            conn.publish(*reply)
        self._show_messages(now)

    def _show_messages(self, now: float) -> None:
        """Give each display the backend message it shows now (the desk decides)."""
        if self.desk is None:
            return
        changed = self.desk.show(self.panels, self.inbox.router, now)
        for panel in changed:
            panel.publish()
        if changed:
            self._wake_clock.set()

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
        """The station's EVerest link: the broker connection and the session cost API's beats."""
        return self.link.conn is not None and self.session_api.ok

    def _link_changed(self, now: float) -> None:
        up = self.link_up()
        if not (self.failed or self._stop.is_set()):  # "stopping"/"failed" stays the status
            self.notifier.send(STATUS=f"running, link {'up' if up else 'down'}")
        for panel in self.panels:
            # A display's link (the station's and its EVSE's heartbeats) is decided here only
            # and held by its display state: everything else asks `panel.state.link_up`.
            panel_up = up and (panel.watch is None or panel.watch.ok)
            if panel_up != panel.state.link_up:
                log.info("EVerest link %s%s", "up" if panel_up else "down",
                         f" ({panel.name})" if panel.evse is not None else "")
            self._apply(panel, LinkChanged(up=panel_up), now)

    # ---- timers (all on the loop's monotonic clock) ------------------------------------

    async def _communication_check(self) -> None:
        interval = self.config.watchdog.communication_check_interval_s
        alive = check_payload(True)
        while True:
            # A stopping agent says nothing more: no `true` while the outputs are flushed.
            conn = self.link.conn if not self._stop.is_set() else None
            if conn is not None:
                for watch in self.watches:
                    if conn.publish(watch.check_topic, alive):
                        watch.checks_sent += 1
            self._wake_check.clear()
            await wait_event(self._wake_check, interval)

    async def _clock(self) -> None:
        while True:
            connected = self.link.conn is not None
            deadlines = [d for d in (*(p.model.next_deadline(p.state) for p in self.panels),
                                     *(w.deadline(connected) for w in self.watches),
                                     self.inbox.next_report_at(),
                                     self.desk.deadline(self.loop.time()) if self.desk else None)
                         if d is not None]
            self._wake_clock.clear()
            timeout = max(0.0, min(deadlines) - self.loop.time()) if deadlines else None
            await wait_event(self._wake_clock, timeout)
            now = self.loop.time()
            for watch in self.watches:
                if watch.expire(now, self.link.conn is not None):
                    log.warning("no %s heartbeat for %.1f s: EVerest link down", watch.name,
                                watch.timeout_s)
                    self._link_changed(now)
            self.inbox.report_unassigned(now)
            for panel in self.panels:
                panel.apply(Tick(), now)
            self._show_messages(now)

    async def _sd_watchdog(self, interval: float) -> None:
        # A failed task cancels this one with the rest: systemd's watchdog is then starved.
        while True:
            self.notifier.send(WATCHDOG="1")
            await asyncio.sleep(interval)
