"""Exec hook output (`type = "exec"`): run a program on each view change, view JSON on stdin.

- `argv` runs without a shell, in its own process group, with the view as compact JSON on
  stdin (then EOF) and stdout discarded.
- Environment (nothing else is inherited): PATH=/usr/sbin:/usr/bin:/sbin:/bin, LANG=C.UTF-8,
  COST_SCREEN (the screen), COST_TOTAL (the total's text or ""), COST_MESSAGE (the message
  or ""), each cut to 4096 characters (the JSON has the full text). A bare `argv[0]` is
  looked up in that PATH.
- After `timeout_s` (default 5) the whole process group is killed (SIGKILL) and reaped.
- A non-zero exit, a death by signal or a timeout raises `ExecFailed` whose text has the
  first line of the program's stderr, so the runtime counts and logs it.
- A failing hook is retried with the worker's backoff: 0.1 s doubling up to `retry_max_s`
  (30 s by default for exec, not the 0.5 s of device outputs).
- One run at a time: the runtime's worker awaits `show()`, which returns only once the run
  has ended, and then calls it with the newest view.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import Annotated

import msgspec

from agent.model.text import truncate
from agent.model.view import View, encode_view
from agent.outputs.base import OutputConfig

PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
STDERR_KEEP = 4096  # bytes of stderr kept for the error message
ENV_VALUE_MAX = 4096  # characters of a COST_* value (the kernel caps one at 128 KiB)


class ExecConfig(OutputConfig, frozen=True, kw_only=True, tag="exec"):
    """`[[output]] type = "exec"`; see docs/outputs.md."""

    argv: Annotated[list[str], msgspec.Meta(min_length=1)]
    timeout_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 5.0
    # A failing hook is re-run after 0.1 s doubling up to this: spawning a process is costly
    # on a small board, so the cap is higher than the other outputs' 0.5 s.
    retry_max_s: float = 30.0

    def __post_init__(self) -> None:
        if not self.argv[0]:
            raise ValueError("argv: the program (argv[0]) is empty")
        for i, arg in enumerate(self.argv):
            if "\0" in arg:
                raise ValueError(f"argv[{i}]: contains a NUL character")


class ExecFailed(RuntimeError):
    """The hook exited non-zero, died by a signal, or timed out."""


def environment(view: View) -> dict[str, str]:
    """The hook's whole environment for this view."""
    def clean(text: str | None) -> str:
        return (text or "").replace("\0", "")[:ENV_VALUE_MAX]
    return {
        "PATH": PATH,
        "LANG": "C.UTF-8",
        "COST_SCREEN": view.screen,
        "COST_TOTAL": clean(view.total.text if view.total else None),
        "COST_MESSAGE": clean(view.message),
    }


def _first_line(stderr: bytes) -> str:
    for line in stderr.decode("utf-8", "replace").splitlines():
        if line.strip():
            return truncate(line.strip(), 200)
    return "(no stderr)"


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


class ExecOutput:
    """The Output running one hook program."""

    def __init__(self, config: ExecConfig) -> None:
        self.config = config
        self.program = config.argv[0]

    async def open(self) -> None:
        """Check that an absolute program path exists and is executable."""
        if os.path.isabs(self.program) and not os.access(self.program, os.X_OK):
            raise ExecFailed(f"{self.program}: missing or not executable")

    async def show(self, view: View) -> None:
        """Run the hook once for this view; raise ExecFailed unless it exits 0 in time."""
        proc = await self._spawn(view)
        stderr = bytearray()
        try:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for drops a cancel that comes
            # as the run ends, and the worker would outlive the agent's stop.
            async with asyncio.timeout(self.config.timeout_s):
                await self._converse(proc, encode_view(view), stderr)
        except TimeoutError:
            _kill_group(proc)
            await proc.wait()
            raise ExecFailed(f"{self.program} timed out after {self.config.timeout_s:g} s and "
                             f"was killed: {_first_line(bytes(stderr))}") from None
        except BaseException:  # cancelled (agent stopping) or an unexpected error
            _kill_group(proc)
            with contextlib.suppress(BaseException):
                await asyncio.shield(proc.wait())
            raise
        code = proc.returncode
        if code == 0:
            return
        if code is not None and code < 0:
            how = f"was killed by {signal.Signals(-code).name}"
        else:
            how = f"exited with status {code}"
        raise ExecFailed(f"{self.program} {how}: {_first_line(bytes(stderr))}")

    async def _spawn(self, view: View) -> asyncio.subprocess.Process:
        """Start the hook; a cancel while it starts still kills and reaps its group."""
        spawn = asyncio.ensure_future(asyncio.create_subprocess_exec(
            *self.config.argv, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            env=environment(view), start_new_session=True, close_fds=True))
        try:
            return await asyncio.shield(spawn)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                proc = await spawn
                _kill_group(proc)
                await proc.wait()
            raise

    async def _converse(self, proc: asyncio.subprocess.Process, data: bytes,
                        stderr: bytearray) -> None:
        """Feed stdin, collect stderr (first STDERR_KEEP bytes), wait for the exit."""
        async def feed() -> None:
            assert proc.stdin is not None
            try:
                proc.stdin.write(data)
                await proc.stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the hook need not read its stdin
            finally:
                proc.stdin.close()

        async def collect() -> None:
            assert proc.stderr is not None
            while chunk := await proc.stderr.read(65536):
                stderr.extend(chunk[: max(0, STDERR_KEEP - len(stderr))])

        await asyncio.gather(feed(), collect(), proc.wait())

    async def close(self) -> None:
        """Nothing to release: show() never leaves a process behind."""


CONFIG = ExecConfig


def create(config: ExecConfig) -> ExecOutput:
    """Build the output from its validated config."""
    return ExecOutput(config)
