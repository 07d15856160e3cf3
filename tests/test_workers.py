"""Output workers: newest view wins, failures retried, a stuck output delays nobody."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

from agent.model.view import View
from agent.outputs.file import FileConfig, FileOutput
from agent.process.workers import OutputWorker
from tests.tasks import running


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
        async with running(*workers):
            for text in ("one", "two", "three"):
                for w in workers:
                    w.submit(view(text))
                assert await workers[1].flush(5.0)
                assert json.loads(path.read_bytes())["message"] == text
            assert stuck.calls == 1
            assert not await workers[0].flush(0.05)
    asyncio.run(scenario())


def test_failures_are_counted_and_newest_view_shown_on_recovery() -> None:
    async def scenario() -> None:
        flaky = Flaky(failures=3)
        worker = OutputWorker("flaky", flaky, 0.2)
        async with running(worker):
            worker.submit(view("old"))
            worker.submit(view("new"))
            assert await worker.flush(10.0)
            assert flaky.shown == ["new"]
            assert worker.stats.failed == 3
            assert worker.stats.ok == 1
            assert worker.stats.last_error == "OSError: device gone"
            assert flaky.closes == 3 and flaky.opens == 4   # closed after each failure, reopened
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


class Display:
    """A repaintable, watchable output: records shows and repaints; `lose()` ends watch()."""

    def __init__(self, fail_repaints: int = 0) -> None:
        self.painted: list[tuple[str, str | None]] = []
        self.opens = 0
        self.closes = 0
        self.fail_repaints = fail_repaints
        self.lost = asyncio.Event()

    async def open(self) -> None:
        self.opens += 1
        self.lost.clear()

    async def show(self, view: View) -> None:
        self.painted.append(("show", view.message))

    async def repaint(self, view: View) -> None:
        if self.fail_repaints:
            self.fail_repaints -= 1
            raise OSError("display did not answer")
        self.painted.append(("repaint", view.message))

    async def watch(self) -> None:
        await self.lost.wait()
        raise OSError("device replaced")

    async def close(self) -> None:
        self.closes += 1


async def until(predicate: Callable[[], bool], what: str) -> None:
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def test_repaint_every_refresh_s_without_a_view_change() -> None:
    async def scenario() -> None:
        display = Display()
        worker = OutputWorker("lcd", display, 0.2, refresh_s=0.05)
        async with running(worker):
            worker.submit(view("hello"))
            await until(lambda: display.painted.count(("repaint", "hello")) >= 2, "two repaints")
            assert display.painted[0] == ("show", "hello")
            worker.submit(view("next"))
            await until(lambda: ("repaint", "next") in display.painted, "repaint of the new view")
            assert display.opens == 1 and worker.stats.failed == 0
    asyncio.run(scenario())


def test_failed_repaint_closes_reopens_and_shows_in_full() -> None:
    async def scenario() -> None:
        display = Display(fail_repaints=2)
        worker = OutputWorker("lcd", display, 0.2, refresh_s=0.05)
        async with running(worker):
            worker.submit(view("hello"))
            await until(lambda: ("repaint", "hello") in display.painted, "a good repaint")
            assert display.painted[:3] == [("show", "hello")] * 3  # re-shown after each re-open
            assert worker.stats.failed == 2
            assert worker.stats.last_error == "OSError: display did not answer"
            assert display.opens == 3 and display.closes == 2
    asyncio.run(scenario())


def test_lost_device_is_reopened_and_the_same_view_shown_again() -> None:
    async def scenario() -> None:
        display = Display()
        worker = OutputWorker("lcd", display, 0.2)  # refresh off: only watch() acts
        async with running(worker):
            worker.submit(view("hello"))
            await until(lambda: display.painted == [("show", "hello")], "first show")
            display.lost.set()
            await until(lambda: len(display.painted) == 2, "show after the device came back")
            assert display.painted[1] == ("show", "hello")
            assert (display.opens, display.closes, worker.stats.failed) == (2, 1, 1)
            assert worker.stats.last_error == "OSError: device replaced"
    asyncio.run(scenario())


def test_refresh_s_comes_from_the_output_config() -> None:
    from agent.outputs.serial import SerialConfig

    async def scenario() -> None:
        display = Display()
        config = SerialConfig(device="/dev/ttyS1", refresh_s=0.05, retry_max_s=0.2)
        worker = OutputWorker.for_config("lcd", display, config)
        async with running(worker):
            worker.submit(view("hello"))
            await until(lambda: ("repaint", "hello") in display.painted, "a repaint")
    asyncio.run(scenario())
