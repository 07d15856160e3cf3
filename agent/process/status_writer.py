"""The agent's status file: what it holds (`status_document`) and its writer loop."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import msgspec

from agent.atomic import write_atomic
from agent.lanes import Lane
from agent.model.state import State
from agent.process import logs
from agent.process.link import BrokerLink
from agent.process.panel import Panel
from agent.process.status import Counters
from agent.process.supervise import ApiWatch
from agent.process.workers import OutputWorker
from agent.settings.config import Config

if TYPE_CHECKING:
    from agent.outputs.base import StationOutput
    from agent.process.display_messages import MessageDesk
    from agent.process.inbox import Inbox
    from agent.process.pricing_desk import PricingDesk

log = logging.getLogger(__name__)


class StatusWriter:
    """The status file of the running agent (a part of `Agent`, which sets these)."""

    config: Config
    loop: asyncio.AbstractEventLoop
    counters: Counters
    session_api: ApiWatch
    link: BrokerLink
    panels: list[Panel]
    workers: list[OutputWorker]
    stations: Sequence[StationOutput]
    inbox: Inbox
    pricing_desk: PricingDesk | None
    desk: MessageDesk | None
    # The station's EVerest link, as the agent decides it (Agent.link_up).
    link_up: Callable[[], bool]
    # Its own thread: a stalled disk or output never delays the status, nor the status them.
    status_lane: Lane

    async def _status_loop(self) -> None:
        while True:
            await self._write_status()
            await asyncio.sleep(self.config.status.interval_s)

    def status_document(self) -> dict[str, object]:
        """What the status file holds."""
        now = self.loop.time()
        first = self.panels[0]
        evses = {}
        for panel in self.panels:
            if panel.evse is None or panel.watch is None:
                continue
            counters = self.inbox.evse_counters[panel.evse.module_id]
            evses[str(panel.evse.id)] = counters.snapshot(
                now, panel.watch, module_id=panel.evse.module_id,
                link="up" if panel.state.link_up else "down",
                screen=panel.view.screen if panel.view else None,
                session_id=_session_id(panel.state),
                late_session_costs=panel.state.late_results)
        # One display: its screen and session at the top. With [[evse]] there is no station-wide
        # screen or session: each EVSE's are under `evse` (the top level would be EVSE 1's).
        single = {} if evses else {"screen": first.view.screen if first.view else None,
                                   "session_id": _session_id(first.state)}
        return self.counters.snapshot(
            now, self.session_api,
            link="up" if self.link_up() else "down", broker=self.link.stats, **single,
            interval_s=self.config.status.interval_s, threads=threading.active_count(),
            outputs={**{w.name: w.report(now) for w in self.workers},
                     **{s.name: s.stats for s in self.stations}},
            pricing=(self.pricing_desk.pricing.stats() if self.pricing_desk is not None
                     else None),
            late_session_costs=sum(p.state.late_results for p in self.panels),
            evse=evses or None, log_dropped=logs.dropped(),
            display_messages=(self.desk.status(now, self.link.conn is not None)
                              if self.desk is not None else None))

    async def _write_status(self) -> None:
        data = msgspec.json.encode(self.status_document())
        try:
            await self.status_lane.call(_write_status_file, self.config.status.path, data)
        except OSError as exc:
            log.warning("status file %s: %s", self.config.status.path, exc)


def _session_id(state: State) -> str | None:
    """The id of the session on screen: EVerest's session uuid, else the session_cost's id."""
    if state.evse_session is not None:
        return state.evse_session
    return state.session.session_id if state.session is not None else None


def _write_status_file(path: str, data: bytes) -> None:
    write_atomic(path, data + b"\n", durable=False, parents=True)
