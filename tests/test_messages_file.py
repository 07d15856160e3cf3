"""The display messages' file (agent/process/messages_file.py): the last board requested is the
one on disk, also when the stop cancels the writer with a write in flight."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from agent.core.messages import encode_board
from agent.model.display_messages import Board
from agent.process import messages_file
from agent.process.messages_file import FILE_NAME, MessagesFile


def test_the_stop_writes_the_newest_board_after_the_write_in_flight(tmp_path: Path) -> None:
    first, newest = Board(seq=1), Board(seq=2)

    async def main() -> None:
        keeper = MessagesFile(str(tmp_path))
        keeper.request(first)
        writer = asyncio.create_task(keeper.keep())
        await asyncio.sleep(0)  # the writer has taken the first board
        keeper.request(newest)
        writer.cancel()  # the stop
        await asyncio.gather(writer, return_exceptions=True)
        await keeper.save()
    asyncio.run(main())
    assert json.loads((tmp_path / FILE_NAME).read_bytes()) == json.loads(encode_board(newest))


def test_the_stop_waits_for_the_write_in_flight(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer took the newest board and its (slow) write is in flight when the stop
    cancels it: the stop's save returns only once that board is on disk."""
    real = messages_file._write

    def slow(path: str, data: bytes) -> None:
        time.sleep(0.3)  # a slow flash write, in the lane's thread
        real(path, data)
    monkeypatch.setattr(messages_file, "_write", slow)
    board = Board(seq=7)

    async def main() -> None:
        keeper = MessagesFile(str(tmp_path))
        keeper.request(board)
        writer = asyncio.create_task(keeper.keep())
        await asyncio.sleep(0.05)  # its write is in flight
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        await keeper.save()
        assert (tmp_path / FILE_NAME).exists(), "the stop did not wait for the write"
    asyncio.run(main())


def test_a_board_already_on_disk_is_not_written_again(tmp_path: Path) -> None:
    async def main() -> None:
        keeper = MessagesFile(str(tmp_path))
        keeper.request(Board(seq=1))
        await keeper.save()
        (tmp_path / FILE_NAME).write_text("untouched")
        await keeper.save()
    asyncio.run(main())
    assert (tmp_path / FILE_NAME).read_text() == "untouched"


def test_no_state_directory_no_file(tmp_path: Path) -> None:
    async def main() -> bytes | None:
        keeper = MessagesFile("")
        keeper.request(Board(seq=1))
        await keeper.save()
        return await keeper.read()
    assert asyncio.run(main()) is None
