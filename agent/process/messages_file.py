"""The display messages' file: read at start, written after each change (the one writer),
off the loop in a lane of its own. What it holds is the core's (agent.core.messages)."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING

from agent.atomic import write_atomic
from agent.core.messages import encode_board
from agent.lanes import FileKeeper, Lane

if TYPE_CHECKING:
    from agent.model.display_messages import Board

log = logging.getLogger(__name__)

FILE_NAME = "display-messages.json"


class MessagesFile:
    """Keeps the newest board on disk (nothing without a state directory).

    Writes are serialised as the snapshots' are: the stop's save waits for a write still in
    flight from the cancelled writer task, then writes the newest board unless that write
    already held it, so the last board requested is the one on disk.
    """

    def __init__(self, state_dir: str) -> None:
        self.path = os.path.join(state_dir, FILE_NAME) if state_dir else None
        self._lane = Lane("messages")  # apart from the snapshots and the outputs
        self._newest: Board | None = None  # the last board requested
        self._written: Board | None = None  # the last board on disk
        self._writer = FileKeeper(self._lane)
        self._dirty = asyncio.Event()

    async def read(self) -> bytes | None:
        """The previous run's file, or None (none, or unreadable: logged)."""
        if self.path is None:
            return None
        try:
            return await self._lane.call(_read, self.path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("display messages: %s: %s", self.path, exc.strerror or exc)
            return None

    def request(self, board: Board) -> None:
        """Have the writer save `board` (only the newest is written)."""
        self._newest = board
        self._dirty.set()

    async def keep(self) -> None:
        """Write each requested board (the one writer)."""
        while True:
            await self._dirty.wait()
            await self.save()

    async def save(self) -> None:
        """Write the newest board now unless the disk has it (also at stop)."""
        self._dirty.clear()
        await self._writer.settled()
        board = self._newest
        if self.path is None or board is None or board is self._written:
            return

        def landed(board: Board = board) -> None:
            self._written = board
        try:
            await self._writer.write(_write, self.path, encode_board(board), landed=landed)
        except OSError as exc:
            log.warning("display messages: %s: %s", self.path, exc.strerror or exc)


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _write(path: str, data: bytes) -> None:
    write_atomic(path, data, parents=True)
