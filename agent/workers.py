"""One worker task per output: holds only the newest view, retries with backoff, never blocks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import msgspec

from agent.outputs.base import Output, OutputConfig
from agent.view import View

log = logging.getLogger(__name__)

RETRY_START_S = 0.1
CLOSE_TIMEOUT_S = 0.3


class OutputStats(msgspec.Struct):
    """Per-output counters for the status file."""

    ok: int = 0
    failed: int = 0
    last_error: str | None = None
    last_error_at: str | None = None


class OutputWorker:
    """Feeds one output; a slow or failing output delays nobody else."""

    def __init__(self, name: str, output: Output, retry_max_s: float) -> None:
        self.name = name
        self.output = output
        self.retry_max_s = retry_max_s
        self.stats = OutputStats()
        self._latest: View | None = None
        self._shown: View | None = None
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._opened = False
        self._failing = False
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def for_config(cls, name: str, output: Output, config: OutputConfig) -> OutputWorker:
        """A worker with the retry cap of `config`."""
        return cls(name, output, config.retry_max_s)

    async def run(self) -> None:
        """Feed the output until cancelled (the runtime's task group owns this), then close it."""
        try:
            await self._run()
        finally:
            if self._opened:
                await self._close(CLOSE_TIMEOUT_S)

    def start(self) -> None:
        """Start the worker task (owned here, cancelled by stop())."""
        self._task = asyncio.create_task(self._run(), name=f"output:{self.name}")

    def submit(self, view: View) -> None:
        """Make `view` the next thing to show; an older pending view is dropped."""
        self._latest = view
        self._idle.clear()
        self._wake.set()

    async def flush(self, within_s: float) -> bool:
        """Wait until the newest view is shown (True) or `timeout` passes (False)."""
        try:
            await asyncio.wait_for(self._idle.wait(), within_s)
        except TimeoutError:
            return False
        return True

    async def stop(self, within_s: float = 0.3) -> None:
        """Cancel the worker and close the output."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._opened:
            await self._close(within_s)

    async def _close(self, within_s: float) -> None:
        self._opened = False
        try:
            await asyncio.wait_for(self.output.close(), within_s)
        except Exception as exc:  # a broken close must not stop the others
            log.warning("output %s: close failed: %s", self.name, exc)

    async def _run(self) -> None:
        delay = RETRY_START_S
        while True:
            await self._wake.wait()
            self._wake.clear()
            view = self._latest
            if view is None or view is self._shown:
                self._idle.set()
                continue
            try:
                if not self._opened:
                    await self.output.open()
                    self._opened = True
                await self.output.show(view)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed(exc)
                await self._close(1.0)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)
                self._wake.set()  # retry with whatever is newest by then
                continue
            if self._failing:
                log.info("output %s: recovered", self.name)
                self._failing = False
            delay = RETRY_START_S
            self.stats.ok += 1
            self._shown = view
            if self._latest is view:
                self._idle.set()

    def _failed(self, exc: Exception) -> None:
        text = f"{type(exc).__name__}: {exc}"[:200]
        self.stats.failed += 1
        if not self._failing or text != self.stats.last_error:
            # Log each distinct failure once, not once per retry.
            log.warning("output %s: %s", self.name, text)
        self._failing = True
        self.stats.last_error = text
        self.stats.last_error_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
