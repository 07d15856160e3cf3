"""The agent process: the shell around the station core (agent.core.station). It feeds the
core what happens (broker messages, the connection, time, a fetched Rate) and carries out the
effects it returns (views to the outputs, publishes, snapshot and message file saves, a Rate
fetch); it decides nothing about the station itself.

One crew (a TaskGroup, crew.py) owns every task: the broker link, the communication check, the
clock, persistence, status, systemd's watchdog, the output workers and the pricing fetch. A
clean stop returns 0; an unexpected exception in any task is logged once with its traceback,
stops the rest cleanly and returns 1, so that systemd (Restart=on-failure) starts it again; so
does a stop that a task holds past its limit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from agent.core.effects import Effects, FetchRate
from agent.core.station import Station
from agent.lanes import Lane
from agent.outputs.base import Publisher
from agent.process.crew import Crew, Stopped
from agent.process.link import BrokerLink
from agent.process.panel import build_panels
from agent.process.sdnotify import Notifier
from agent.process.status_writer import StatusWriter
from agent.process.timers import wait_event
from agent.settings.config import Config

if TYPE_CHECKING:
    from agent.pricing.live import LivePricing
    from agent.process.messages_file import MessagesFile

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
        self.status_lane = Lane("status")
        self.notifier = Notifier()
        self.crew = Crew(self.loop, self.notifier, config.watchdog.stop_limit_s)
        # `stations`: the outputs that serve every display (the web page), each run once.
        self.workers, self.stations, self.panels = build_panels(config)
        self.pricing: LivePricing | None = None
        if config.pricing is not None and config.pricing.enabled:
            # Imported only when configured: the Rate calculator and the HTTP client stack cost
            # 3.5 MiB of RSS on a board (bench/lazy_imports.py).
            from agent.pricing.live import LivePricing

            self.pricing = LivePricing(config.pricing, config.display)
        self.station = Station(config, self.loop.time(), self.pricing)
        self.messages_file: MessagesFile | None = None
        if config.display_messages is not None:
            from agent.process.messages_file import MessagesFile

            self.messages_file = MessagesFile(config.state.dir)
        client_id = (config.mqtt.client_id or
                     f"cost-agent-{config.everest.module_id}-{os.getpid()}")[:64]
        self.link = BrokerLink(config, client_id, self.station.topics, self._receive,
                               self._link_event)
        self._bind_view_publishers()
        self._wake_clock = asyncio.Event()
        self._wake_check = asyncio.Event()
        self._stop = asyncio.Event()
        self._fetch: asyncio.Task[None] | None = None

    def _bind_view_publishers(self) -> None:
        """Lend the broker connection to `mqtt` outputs, each with its display's topic."""
        everest = self.config.everest
        for key, panel in self.panels.items():
            evse = f"evse/{key}/" if key is not None else ""
            topic = f"{everest.topic_prefix}cost_agent/{everest.module_id}/{evse}view"
            for worker in panel.workers:
                if isinstance(worker.output, Publisher):
                    worker.output.bind(self.link, topic)

    # ---- lifecycle ---------------------------------------------------------------------

    async def run(self) -> int:
        """Run until stop(); 0 after a clean stop, 1 when a task of the agent failed."""
        snapshots = {key: await panel.keeper.load() for key, panel in self.panels.items()}
        boot_id = next(iter(self.panels.values())).keeper.boot_id
        messages = await self.messages_file.read() if self.messages_file is not None else None
        now, wall = self.loop.time(), time.time()
        self._carry_out(self.station.restore(snapshots, boot_id, messages, now, wall), now, wall)
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
        for panel in self.panels.values():
            spawn(f"persist:{panel.name}", panel.keeper.run)
        if self.messages_file is not None:
            spawn("display-messages", self.messages_file.keep)
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
        """Ask run() to stop cleanly (a task still running watchdog.stop_limit_s later is
        overdue)."""
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
            for watch, payload in self.station.communication_checks(alive=False):
                conn.publish(watch.check_topic, payload)
        await asyncio.gather(*(w.flush(STOP_FLUSH_S) for w in self.workers))
        raise Stopped

    async def _shutdown(self) -> None:
        writes: dict[str, Coroutine[Any, Any, None]] = {"the final snapshots": self._save_all()}
        if self.messages_file is not None:
            writes["the display messages' file"] = self.messages_file.save()
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
        for panel in self.panels.values():
            panel.keeper.request(self.station.display(panel.key).state, self.loop.time(),
                                 time.time())
            panel.keeper.close()
        results = await asyncio.gather(*(p.keeper.run() for p in self.panels.values()),
                                       return_exceptions=True)
        for result in results:
            if isinstance(result, Exception) and not self.failed:  # else logged already
                log.error("final save failed", exc_info=result)
                self.crew.failed = True

    # ---- into the core, and its effects out --------------------------------------------

    def _receive(self, topic: str, payload: bytes, now: float) -> None:
        """One message from the broker."""
        wall = time.time()
        self._carry_out(self.station.receive(topic, payload, now, wall), now, wall)

    def _link_event(self) -> None:
        """The broker connection came or went."""
        up = self.link.conn is not None
        if not up and self._stop.is_set():
            # The stop closed it: EVerest did not go away, no display says so; the last
            # status still says the link is down.
            self.station.connected = False
            return
        if up:
            self._wake_check.set()  # the first check goes out at once
        now, wall = self.loop.time(), time.time()
        self._carry_out(self.station.connection(up, now, wall), now, wall)

    def _carry_out(self, fx: Effects, now: float, wall: float) -> None:
        """Do what the core asked for; nothing here decides anything about the station."""
        for key, view in fx.views:
            self.panels[key].show(view)
        if fx.publish:
            conn = self.link.conn
            if conn is not None:
                for topic, payload in fx.publish:
                    conn.publish(topic, payload)
        if fx.saves:  # at the input's times: a receipt's end is told by both clocks
            for key, state in fx.saves:
                self.panels[key].keeper.request(state, now, wall)
        if fx.board is not None and self.messages_file is not None:
            self.messages_file.request(fx.board)
        if fx.fetch is not None:
            self._fetch_rate(fx.fetch)
        if fx.link is not None and not (self.failed or self._stop.is_set()):
            # "stopping"/"failed" stays the status systemd shows
            self.notifier.send(STATUS=f"running, link {'up' if fx.link else 'down'}")
        if fx.wake:
            self._wake_clock.set()

    def _fetch_rate(self, fetch: FetchRate) -> None:
        """Ask the pricing API for this token's Rate in the background (newest token wins)."""
        if self._fetch is not None:
            self._fetch.cancel()
        self._fetch = self.crew.spawn_while_running("pricing-fetch",
                                                    lambda: self._fetched(fetch))

    async def _fetched(self, fetch: FetchRate) -> None:
        assert self.pricing is not None
        if await self.pricing.authorize(fetch.tag_id, fetch.evse_id, fetch.keys):
            now, wall = self.loop.time(), time.time()
            self._carry_out(self.station.rate_fetched(fetch.keys, now, wall), now, wall)

    # ---- timers (all on the loop's monotonic clock) ------------------------------------

    async def _communication_check(self) -> None:
        interval = self.config.watchdog.communication_check_interval_s
        while True:
            # A stopping agent says nothing more: no `true` while the outputs are flushed.
            conn = self.link.conn if not self._stop.is_set() else None
            if conn is not None:
                for watch, payload in self.station.communication_checks():
                    if conn.publish(watch.check_topic, payload):
                        watch.checks_sent += 1
            self._wake_check.clear()
            await wait_event(self._wake_check, interval)

    async def _clock(self) -> None:
        while True:
            deadline = self.station.next_deadline(self.loop.time(), time.time())
            self._wake_clock.clear()
            timeout = max(0.0, deadline - self.loop.time()) if deadline is not None else None
            await wait_event(self._wake_clock, timeout)
            now, wall = self.loop.time(), time.time()
            self._carry_out(self.station.tick(now, wall), now, wall)

    async def _sd_watchdog(self, interval: float) -> None:
        # A failed task cancels this one with the rest: systemd's watchdog is then starved.
        while True:
            self.notifier.send(WATCHDOG="1")
            await asyncio.sleep(interval)
