"""The display messages' file: read at start, written after each change (the one writer),
off the loop in a lane of its own. What it holds is the core's (agent.core.messages)."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING

from agent.atomic import write_atomic
from agent.core.messages import encode_board
from agent.lanes import Lane

if TYPE_CHECKING:
    from agent.model.display_messages import Board

log = logging.getLogger(__name__)

FILE_NAME = "display-messages.json"


class MessagesFile:
    """Keeps the newest board on disk (nothing without a state directory)."""

    def __init__(self, state_dir: str) -> None:
        self.path = os.path.join(state_dir, FILE_NAME) if state_dir else None
        self._lane = Lane("messages")  # apart from the snapshots and the outputs
        self._pending: Board | None = None
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
        self._pending = board
        self._dirty.set()

    async def keep(self) -> None:
        """Write each requested board (the one writer)."""
        while True:
            await self._dirty.wait()
            await self.save()

    async def save(self) -> None:
        """Write the pending board now (also at stop)."""
        self._dirty.clear()
        board, self._pending = self._pending, None
        if self.path is None or board is None:
            return
        try:
            await self._lane.call(_write, self.path, encode_board(board))
        except OSError as exc:
            log.warning("display messages: %s: %s", self.path, exc.strerror or exc)


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _write(path: str, data: bytes) -> None:
    write_atomic(path, data, parents=True)
