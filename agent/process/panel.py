"""The shell's side of each display: the outputs that show it and its snapshot file (one per
EVSE, or one for the whole station without `[[evse]]`). Its state and view are the core's."""

from __future__ import annotations

from typing import cast

from agent.core.snapshot import SNAPSHOT_NAME
from agent.model.view import View
from agent.outputs.base import Output, OutputConfig, StationOutput
from agent.outputs.registry import load_kind
from agent.process.persist import SnapshotKeeper
from agent.process.workers import OutputWorker
from agent.settings.config import Config


class Panel:
    """One display's outputs and snapshot writer."""

    def __init__(self, key: int | None, workers: list[OutputWorker], keeper: SnapshotKeeper,
                 stations: list[StationOutput]) -> None:
        self.key = key  # the EVSE id, None for the station's one display
        self.workers = workers
        self.keeper = keeper
        self.stations = stations

    @property
    def name(self) -> str:
        """`evse 2` or `station`, for log lines."""
        return f"evse {self.key}" if self.key is not None else "station"

    def show(self, view: View) -> None:
        """Hand the new view to every output of this display (none of them blocks)."""
        for worker in self.workers:
            worker.submit(view)
        for station in self.stations:
            station.update(self.key, view)


def build_panels(config: Config) -> tuple[list[OutputWorker], list[StationOutput],
                                          dict[int | None, Panel]]:
    """Every output's worker, the outputs that serve the whole station (each panel hands them
    its views), and one panel per [[evse]] (or one for the station), by display key."""
    made = [_make(i, oc) for i, oc in enumerate(config.output)]
    workers = [w for w in made if isinstance(w, OutputWorker)]
    stations = [s for s in made if not isinstance(s, OutputWorker)]
    if not config.evse:
        return workers, stations, {None: Panel(None, workers, SnapshotKeeper(config.state.dir),
                                               stations)}
    single = len(config.evse) == 1
    panels: dict[int | None, Panel] = {}
    for evse in config.evse:
        shows = [w for w, oc in zip(made, config.output, strict=True)
                 if isinstance(w, OutputWorker) and (oc.evse == evse.id
                                                     or (single and oc.evse is None))]
        name = SNAPSHOT_NAME.replace(".json", f"-evse{evse.id}.json")
        panels[evse.id] = Panel(evse.id, shows, SnapshotKeeper(config.state.dir, name),
                                stations)
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
