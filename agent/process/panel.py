"""One display of the station: its model, state, view, outputs and snapshot (one per EVSE, or
one for the whole station without `[[evse]]`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import cast

import msgspec

from agent.everest.session_cost import SessionCost
from agent.model.display import DisplayModel
from agent.model.state import Event, State
from agent.model.view import View, same_content
from agent.outputs.base import Output, OutputConfig, StationOutput
from agent.outputs.registry import load_kind
from agent.process.persist import SNAPSHOT_NAME, SnapshotKeeper
from agent.process.status import wall_clock_text
from agent.process.supervise import ApiWatch
from agent.process.workers import OutputWorker
from agent.settings.config import Config, EvseConfig

log = logging.getLogger(__name__)


class Panel:
    """Applies events to one display state and pushes each changed view to its outputs."""

    def __init__(self, model: DisplayModel, workers: list[OutputWorker], keeper: SnapshotKeeper,
                 evse: EvseConfig | None = None, watch: ApiWatch | None = None,
                 stations: Sequence[StationOutput] = ()) -> None:
        self.model = model
        self.workers = workers
        self.stations = stations
        self.keeper = keeper
        self.evse = evse
        self.watch = watch
        self.state = State()
        self.view: View | None = None
        self._late_logged = 0

    @property
    def name(self) -> str:
        """`evse 2` or `station`, for log lines and the status file."""
        return f"evse {self.evse.id}" if self.evse is not None else "station"

    def apply(self, event: Event, now: float, publish: bool = True) -> bool:
        """Feed one event to the model; True when the state changed."""
        new = self.model.update(self.state, event, now)
        if new is self.state:
            return False
        if new.late_results > self._late_logged and isinstance(event, SessionCost):
            self._late_logged = new.late_results
            log.warning("%s: ignored a late %s session_cost of session %s: session %s is on "
                        "screen", self.name, event.status, event.session_id,
                        self.state.session.session_id if self.state.session else None)
        self.state = new
        self.keeper.request(new, now, time.time())
        if publish:
            self.publish()
        return True

    def publish(self) -> None:
        """Push the view to the outputs if its content changed."""
        view = self.model.view(self.state)
        if same_content(view, self.view):
            return
        self.view = msgspec.structs.replace(view, updated_at=wall_clock_text())
        for worker in self.workers:
            worker.submit(self.view)
        key = self.evse.id if self.evse is not None else None
        for station in self.stations:
            station.update(key, self.view)


def build_panels(config: Config) -> tuple[list[OutputWorker], list[StationOutput], list[Panel]]:
    """Every output's worker, the outputs that serve the whole station (each panel hands them
    its views), and one panel per [[evse]] (or one for the station)."""
    made = [_make(i, oc) for i, oc in enumerate(config.output)]
    workers = [w for w in made if isinstance(w, OutputWorker)]
    stations = [s for s in made if not isinstance(s, OutputWorker)]
    hold = config.display.finished_hold_s
    if not config.evse:
        return workers, stations, [Panel(DisplayModel(config.display), workers,
                                         SnapshotKeeper(config.state.dir, hold),
                                         stations=stations)]
    single = len(config.evse) == 1
    panels = []
    for evse in config.evse:
        shows = [w for w, oc in zip(made, config.output, strict=True)
                 if isinstance(w, OutputWorker) and (oc.evse == evse.id
                                                     or (single and oc.evse is None))]
        watch = ApiWatch(f"evse {evse.id}", evse.base(config.everest.topic_prefix),
                         config.watchdog.heartbeat_timeout_s)
        name = SNAPSHOT_NAME.replace(".json", f"-evse{evse.id}.json")
        template = evse.payment_url or config.display.payment_url
        panels.append(Panel(DisplayModel(config.display, evse.id, template), shows,
                            SnapshotKeeper(config.state.dir, hold, name), evse, watch,
                            stations))
    return workers, stations, panels


def _make(index: int, oc: OutputConfig) -> OutputWorker | StationOutput:
    kind = str(oc.__struct_config__.tag)
    output = load_kind(kind).create(oc)
    name = oc.name or f"{kind}[{index}]"
    if oc.STATION:
        station = cast(StationOutput, output)
        station.name = name
        return station
    return OutputWorker.for_config(name, cast(Output, output), oc)
