"""Logging to stderr, one line per event; journald priority prefixes under systemd."""

from __future__ import annotations

import logging
import os
import sys

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


def setup(level: str = "info") -> None:
    """Configure the root logger once for the whole process."""
    handler = logging.StreamHandler(sys.stderr)
    if under_journald():
        handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(LineFormatter(
            "%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # gmqtt narrates every connection at INFO; the agent logs what matters itself.
    logging.getLogger("gmqtt").setLevel(max(logging.WARNING, root.level))


def truncate(data: bytes | str, limit: int = 120) -> str:
    """A payload shortened for a log line, with non-printables escaped."""
    text = data.decode("utf-8", "backslashreplace") if isinstance(data, bytes) else data
    text = text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= limit else text[:limit] + f"...({len(data)} bytes)"
