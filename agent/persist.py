"""Durable small files: atomic replace with fsync, and the display snapshot kept across reboots."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import msgspec

from agent.messages import DefaultPrice, MessageContent, SessionCost


def write_atomic(path: str | Path, data: bytes, *, durable: bool = True, mode: int = 0o644) -> None:
    """Replace `path` with `data` so readers see the old or the new file, never a torn one."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        # The rename itself is only durable once the directory entry is on disk.
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class Snapshot(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """What a reboot must not lose: the price text and the receipt still on screen."""

    default_price: DefaultPrice | None = None
    finished: SessionCost | None = None
    finished_text: list[MessageContent] | None = None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Snapshot)
SNAPSHOT_NAME = "display-state.json"


def encode_snapshot(snapshot: Snapshot) -> bytes:
    """Snapshot as JSON (optional message fields stay absent, as EVerest sends them)."""
    return _encoder.encode(snapshot)


def load_snapshot(state_dir: str) -> tuple[Snapshot, str | None]:
    """The saved snapshot, or an empty one and the reason it could not be used."""
    if not state_dir:
        return Snapshot(), None
    path = Path(state_dir) / SNAPSHOT_NAME
    try:
        return _decoder.decode(path.read_bytes()), None
    except FileNotFoundError:
        return Snapshot(), None
    except (OSError, msgspec.DecodeError) as exc:
        return Snapshot(), f"{path}: {exc}"
