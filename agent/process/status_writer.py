"""The agent's status file: what it holds (`status_document`) and its writer loop."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec

from agent.atomic import write_atomic
from agent.core.station import Station
from agent.lanes import Lane
from agent.process import logs
from agent.process.link import BrokerLink
from agent.process.workers import OutputWorker
from agent.settings.config import Config

if TYPE_CHECKING:
    from agent.outputs.base import StationOutput

log = logging.getLogger(__name__)


class StatusWriter:
    """The status file of the running agent (a part of `Agent`, which sets these)."""

    config: Config
    loop: asyncio.AbstractEventLoop
    station: Station
    link: BrokerLink
    workers: list[OutputWorker]
    stations: Sequence[StationOutput]
    # Its own thread: a stalled disk or output never delays the status, nor the status them.
    status_lane: Lane

    async def _status_loop(self) -> None:
        while True:
            await self._write_status()
            await asyncio.sleep(self.config.status.interval_s)

    def status_document(self) -> dict[str, object]:
        """What the status file holds: the core's part, then the shell's."""
        now = self.loop.time()
        doc = self.station.status(now, time.time())
        doc.update(
            broker=self.link.stats, interval_s=self.config.status.interval_s,
            threads=threading.active_count(),
            outputs={**{w.name: w.report(now) for w in self.workers},
                     **{s.name: s.stats for s in self.stations}},
            log_dropped=logs.dropped())
        return doc

    async def _write_status(self) -> None:
        data = msgspec.json.encode(self.status_document())
        try:
            await self.status_lane.call(_write_status_file, self.config.status.path, data)
        except OSError as exc:
            log.warning("status file %s: %s", self.config.status.path, exc)


def _write_status_file(path: str, data: bytes) -> None:
    write_atomic(path, data + b"\n", durable=False, parents=True)
