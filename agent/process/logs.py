"""Logging to stderr, one line per event; journald priority prefixes under systemd.

Records are formatted where they are logged and written by a listener thread, so a stalled
stderr (a pipe to a stuck `logger`/syslog) never stalls the event loop: the queue is bounded,
and what does not fit is dropped and counted (`dropped()`, reported once the writer catches up).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import queue
import sys
import threading
from typing import TextIO

QUEUE_SIZE = 1000
STOP_TIMEOUT_S = 1.0

# sd-daemon(3) priorities: journald reads "<N>" at the start of each stderr line.
_SD_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


class JournalFormatter(logging.Formatter):
    """`<N>name: message`: journald adds its own timestamps."""

    def format(self, record: logging.LogRecord) -> str:
        """Prefix the priority; fold newlines so one event stays one line."""
        prio = _SD_PRIORITY.get(record.levelno, 6)
        text = super().format(record).replace("\n", " | ")
        return f"<{prio}>{text}"


class LineFormatter(logging.Formatter):
    """Timestamped single-line records for a terminal or a plain log file."""

    def format(self, record: logging.LogRecord) -> str:
        """Fold newlines so one event stays one line."""
        return super().format(record).replace("\n", " | ")


def under_journald() -> bool:
    """True when stderr is connected to the journal (systemd sets JOURNAL_STREAM)."""
    stream = os.environ.get("JOURNAL_STREAM")
    if not stream:
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    dev, _, ino = stream.partition(":")
    return f"{st.st_dev}:{st.st_ino}" == f"{dev}:{ino}"


class _Writer:
    """The listener thread: writes formatted lines to the stream in batches."""

    def __init__(self, stream: TextIO, formatter: logging.Formatter) -> None:
        self.stream = stream
        self.formatter = formatter
        self.lines: queue.Queue[str | None] = queue.Queue(QUEUE_SIZE)
        self._lock = threading.Lock()
        self._dropped = 0
        self._reported = 0
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def put(self, line: str) -> None:
        """Queue one line; never blocks (a full queue drops it and counts)."""
        try:
            self.lines.put_nowait(line)
        except queue.Full:
            with self._lock:
                self._dropped += 1

    @property
    def dropped(self) -> int:
        """Lines dropped because the queue was full."""
        with self._lock:
            return self._dropped

    def _run(self) -> None:
        while True:
            first = self.lines.get()
            batch = [first]
            with contextlib.suppress(queue.Empty):
                while len(batch) < 64:
                    batch.append(self.lines.get_nowait())
            stop = None in batch
            text = "".join(line + "\n" for line in batch if line is not None)
            dropped = self.dropped
            if dropped > self._reported:
                note = logging.LogRecord(__name__, logging.WARNING, __file__, 0,
                                         "%d log records dropped (stderr too slow)",
                                         (dropped - self._reported,), None)
                text += self.formatter.format(note) + "\n"
                self._reported = dropped
            with contextlib.suppress(OSError, ValueError):  # stderr closed: nothing to do
                self.stream.write(text)
                self.stream.flush()
            if stop:
                return

    def stop(self, timeout: float) -> None:
        """Write what is queued (waiting at most `timeout`) and end the thread."""
        with contextlib.suppress(queue.Full):
            self.lines.put(None, timeout=timeout)
        self._thread.join(timeout)


class QueueLineHandler(logging.Handler):
    """Formats on the caller's thread (one line) and hands the text to the writer thread."""

    def __init__(self, writer: _Writer) -> None:
        super().__init__()
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        """Queue the formatted line; never blocks on the stream."""
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.writer.put(line)


class _Process:
    """The process's one writer, and what earlier writers dropped."""

    writer: _Writer | None = None
    dropped_before = 0


def _formatter() -> logging.Formatter:
    if under_journald():
        return JournalFormatter("%(name)s: %(message)s")
    return LineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                         "%Y-%m-%dT%H:%M:%S")


def setup(level: str = "info") -> None:
    """Configure the root logger once for the whole process (writer thread on stderr)."""
    shutdown()
    formatter = _formatter()
    writer = _Process.writer = _Writer(sys.stderr, formatter)
    handler = QueueLineHandler(writer)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # gmqtt narrates every connection at INFO; the agent logs what matters itself.
    logging.getLogger("gmqtt").setLevel(max(logging.WARNING, root.level))
    atexit.unregister(shutdown)
    atexit.register(shutdown)  # cli.main stops it too; this covers any other exit


def shutdown(timeout: float = STOP_TIMEOUT_S) -> None:
    """Flush and stop the writer thread; later records are written directly (at exit)."""
    writer, _Process.writer = _Process.writer, None
    if writer is None:
        return
    writer.stop(timeout)
    _Process.dropped_before += writer.dropped
    direct = logging.StreamHandler(sys.stderr)
    direct.setFormatter(_formatter())
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not isinstance(h, QueueLineHandler)]
    root.handlers.append(direct)


def dropped() -> int:
    """Log records dropped so far because stderr could not keep up (for the status file)."""
    writer = _Process.writer
    return _Process.dropped_before + (writer.dropped if writer is not None else 0)
