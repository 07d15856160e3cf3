"""Output workers: newest view wins, failures retried, a stuck output delays nobody."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from agent.outputs.file import FileConfig, FileOutput
from agent.view import View
from agent.workers import OutputWorker


def view(message: str) -> View:
    return View(screen="price", link="up", message=message)


class Stuck:
    """An output whose show() never returns (a hung display)."""

    def __init__(self) -> None:
        self.calls = 0

    async def open(self) -> None:
        pass

    async def show(self, view: View) -> None:
        self.calls += 1
        await asyncio.Event().wait()

    async def close(self) -> None:
        pass


class Flaky:
    """Fails the first `failures` shows, then records what it shows."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.shown: list[str | None] = []
        self.opens = 0
        self.closes = 0

    async def open(self) -> None:
        self.opens += 1

    async def show(self, view: View) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("device gone")
        self.shown.append(view.message)

    async def close(self) -> None:
        self.closes += 1


def test_stuck_output_does_not_delay_another(tmp_path: Path) -> None:
    async def scenario() -> None:
        stuck = Stuck()
        path = tmp_path / "view.json"
        workers = [OutputWorker("stuck", stuck, 0.5),
                   OutputWorker("file", FileOutput(FileConfig(path=str(path))), 0.5)]
        for w in workers:
            w.start()
        for text in ("one", "two", "three"):
            for w in workers:
                w.submit(view(text))
            assert await workers[1].flush(5.0)
            assert json.loads(path.read_bytes())["message"] == text
        assert stuck.calls == 1
        assert not await workers[0].flush(0.05)
        for w in workers:
            await w.stop()
    asyncio.run(scenario())


def test_failures_are_counted_and_newest_view_shown_on_recovery() -> None:
    async def scenario() -> None:
        flaky = Flaky(failures=3)
        worker = OutputWorker("flaky", flaky, 0.2)
        worker.start()
        worker.submit(view("old"))
        worker.submit(view("new"))
        assert await worker.flush(10.0)
        assert flaky.shown == ["new"]
        assert worker.stats.failed == 3
        assert worker.stats.ok == 1
        assert worker.stats.last_error == "OSError: device gone"
        assert flaky.closes == 3 and flaky.opens == 4   # closed after each failure, reopened
        await worker.stop()
        assert flaky.closes == 4
    asyncio.run(scenario())


def test_file_output_writes_only_on_change(tmp_path: Path) -> None:
    async def scenario() -> None:
        path = tmp_path / "view.json"
        out = FileOutput(FileConfig(path=str(path)))
        await out.open()
        await out.show(View(screen="price", link="up", updated_at="t1"))
        first = path.stat().st_mtime_ns
        path.write_text("tampered")
        await out.show(View(screen="price", link="up", updated_at="t2"))
        assert path.read_text() == "tampered"      # same content: not rewritten
        await out.show(View(screen="price", link="down", updated_at="t3"))
        assert json.loads(path.read_bytes())["link"] == "down"
        assert first > 0
    asyncio.run(scenario())
