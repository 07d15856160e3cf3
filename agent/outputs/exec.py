"""Exec hook output (`type = "exec"`): run a program on each view change, view JSON on stdin.

- `argv` runs without a shell, in its own process group, with the view as compact JSON on
  stdin (then EOF) and stdout discarded.
- Environment (nothing else is inherited): PATH=/usr/sbin:/usr/bin:/sbin:/bin, LANG=C.UTF-8,
  COST_SCREEN (the screen), COST_TOTAL (the total's text or ""), COST_MESSAGE (the message
  or ""), each cut to 4096 characters (the JSON has the full text). A bare `argv[0]` is
  looked up in that PATH.
- After `timeout_s` (default 5) the whole process group is killed (SIGKILL) and reaped.
- The run ends at the program's exit (its stderr is read for STDERR_GRACE_S more): a child it
  left in the background may hold stderr open, and is left alone (docs/outputs.md).
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
# After the hook's exit, its last stderr lines are read for this long at most (a child it left
# behind may hold stderr open).
STDERR_GRACE_S = 0.2
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


class _Stdin(asyncio.Protocol):
    """The hook's stdin: knows when the pipe is gone (aborting it twice breaks asyncio)."""

    def __init__(self) -> None:
        self.lost = False

    def connection_lost(self, exc: Exception | None) -> None:
        """Written and closed, or the hook closed its end."""
        self.lost = True


class _Pipes:
    """The hook's stdin and stderr: pipes of our own, not asyncio's PIPE, so that waiting for
    the hook's exit never waits for a pipe that a child it left behind still holds
    (asyncio's Process.wait() also waits for its pipes on some versions)."""

    def __init__(self) -> None:
        self.child_fds: tuple[int, int] = (-1, -1)  # the hook's stdin and stderr
        self.kept = bytearray()  # the first STDERR_KEEP bytes of its stderr
        self._reader = asyncio.StreamReader()
        self._stdin: tuple[asyncio.WriteTransport, _Stdin] | None = None
        self._stderr: asyncio.ReadTransport | None = None

    @classmethod
    async def open(cls, data: bytes) -> _Pipes:
        """Both pipes, watched by the loop; `data` is written to stdin, then end of file."""
        pipes = cls()
        loop = asyncio.get_running_loop()
        stdin_r, stdin_w = os.pipe2(os.O_CLOEXEC)
        stderr_r, stderr_w = os.pipe2(os.O_CLOEXEC)
        pipes.child_fds = (stdin_r, stderr_w)
        ours = [stdin_w, stderr_r]
        try:
            writer, stdin = await loop.connect_write_pipe(
                _Stdin, os.fdopen(ours.pop(0), "wb", buffering=0))
            pipes._stdin = writer, stdin
            pipes._stderr, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(pipes._reader),
                os.fdopen(ours.pop(0), "rb", buffering=0))
        except BaseException:
            pipes.close()
            for fd in ours:
                os.close(fd)
            raise
        # Buffered by the transport and written as the hook reads; a hook that exits without
        # reading it all just ends the pipe (no BrokenPipeError reaches us).
        writer.write(data)
        writer.close()  # end of file once written
        return pipes

    def close_child_ends(self) -> None:
        """The hook has its own copies; ours would keep its pipes open."""
        for fd in self.child_fds:
            if fd >= 0:
                os.close(fd)
        self.child_fds = (-1, -1)

    async def collect(self) -> None:
        """Keep the first STDERR_KEEP bytes, read until the pipe is closed."""
        while chunk := await self._reader.read(65536):
            self.kept.extend(chunk[: max(0, STDERR_KEEP - len(self.kept))])

    def close(self) -> None:
        """Drop what the hook did not read, stop reading; a child it left behind that goes on
        writing gets EPIPE."""
        self.close_child_ends()
        if self._stdin is not None and not self._stdin[1].lost:
            self._stdin[0].abort()
        if self._stderr is not None:
            self._stderr.close()


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
        pipes = await _Pipes.open(encode_view(view))
        try:
            try:
                proc = await self._spawn(view, *pipes.child_fds)
            finally:
                pipes.close_child_ends()
            await self._run(proc, pipes)
        finally:
            pipes.close()

    async def _run(self, proc: asyncio.subprocess.Process, pipes: _Pipes) -> None:
        stderr = pipes.kept
        try:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for drops a cancel that comes
            # as the run ends, and the worker would outlive the agent's stop.
            async with asyncio.timeout(self.config.timeout_s):
                await self._wait(proc, pipes)
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

    async def _spawn(self, view: View, stdin: int, stderr: int) -> asyncio.subprocess.Process:
        """Start the hook; a cancel while it starts still kills and reaps its group."""
        spawn = asyncio.ensure_future(asyncio.create_subprocess_exec(
            *self.config.argv, stdin=stdin,
            stdout=asyncio.subprocess.DEVNULL, stderr=stderr,
            env=environment(view), start_new_session=True, close_fds=True))
        try:
            return await asyncio.shield(spawn)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                proc = await spawn
                _kill_group(proc)
                await proc.wait()
            raise

    @staticmethod
    async def _wait(proc: asyncio.subprocess.Process, pipes: _Pipes) -> None:
        """Collect stderr until the hook exits, then what is left of it for a moment.

        The exit ends the run, not the end of its stderr: a child the hook left in the
        background may hold that open for as long as it lives.
        """
        collecting = asyncio.ensure_future(pipes.collect())
        try:
            await proc.wait()
            # What the hook wrote just before it exited may still be in the pipe.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STDERR_GRACE_S):
                    await asyncio.shield(collecting)
        finally:
            collecting.cancel()
            await asyncio.gather(collecting, return_exceptions=True)

    async def close(self) -> None:
        """Nothing to release: show() never leaves a process behind."""


CONFIG = ExecConfig


def create(config: ExecConfig) -> ExecOutput:
    """Build the output from its validated config."""
    return ExecOutput(config)
