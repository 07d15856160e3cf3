"""`file` output: the view as JSON, replaced atomically, written only when it changed."""

from __future__ import annotations

import logging

from agent.atomic import remove_temps_of, write_atomic
from agent.lanes import Lane
from agent.model.view import View, encode_view, same_content
from agent.outputs.base import OutputConfig

log = logging.getLogger(__name__)


class FileConfig(OutputConfig, tag="file", frozen=True):
    """`[[output]] type = "file"`."""

    path: str = "/run/cost-agent/display.json"
    # fsync each write: off by default, the file usually lives on tmpfs (/run).
    durable: bool = False


CONFIG = FileConfig


class FileOutput:
    """Writes the view JSON to a temp file and renames it over `path`."""

    def __init__(self, config: FileConfig) -> None:
        self.config = config
        self._last: View | None = None
        self._lane = Lane("file")  # a stalled disk holds this output only

    async def open(self) -> None:
        """Clear what a killed earlier run left beside the file; the next show() writes."""
        self._last = None
        removed = await self._lane.call(remove_temps_of, self.config.path)
        if removed:
            log.info("output file %s: removed %d temp file(s) of an interrupted write",
                     self.config.path, removed)

    async def show(self, view: View) -> None:
        """Write the view unless the file already shows the same content."""
        if same_content(view, self._last):
            return
        await self._lane.call(write_atomic, self.config.path, encode_view(view) + b"\n",
                              durable=self.config.durable)
        self._last = view

    async def close(self) -> None:
        """Nothing to release."""


def create(config: OutputConfig) -> FileOutput:
    """Build the output from its validated table."""
    assert isinstance(config, FileConfig)
    return FileOutput(config)
