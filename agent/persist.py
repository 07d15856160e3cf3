"""Durable small files: atomic replace with fsync, and the display snapshot kept across reboots."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from pathlib import Path

import msgspec

from agent.display import DisplayModel, State
from agent.messages import DefaultPrice, MessageContent, SessionCost

log = logging.getLogger(__name__)


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


class SnapshotKeeper:
    """Saves the snapshot when it changes (off the event loop) and restores it at start."""

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir
        self.saved = Snapshot()

    @staticmethod
    def snapshot_of(state: State) -> Snapshot:
        """What of `state` must survive a reboot."""
        session = state.session
        finished = session if session is not None and session.status == "Finished" else None
        # A receipt whose hold has expired is not brought back by the next boot.
        return Snapshot(default_price=state.default_price, finished=finished,
                        finished_text=state.session_text if finished else None)

    async def save(self, state: State) -> None:
        """Write the snapshot of `state` if it differs from the last one written."""
        if not self.state_dir:
            return
        snapshot = self.snapshot_of(state)
        if snapshot == self.saved:
            return
        path = Path(self.state_dir) / SNAPSHOT_NAME
        try:
            await asyncio.to_thread(_write_private, path, encode_snapshot(snapshot))
            self.saved = snapshot
        except OSError as exc:
            log.warning("state file %s: %s", path, exc)

    def restore(self, model: DisplayModel, state: State, now: float) -> State:
        """`state` with the saved default price and finished session applied."""
        snapshot, problem = load_snapshot(self.state_dir)
        if problem:
            log.warning("ignoring saved state: %s", problem)
        self.saved = snapshot
        if snapshot.default_price is not None:
            state = model.update(state, snapshot.default_price, now)
        if snapshot.finished is not None:
            state = model.update(state, snapshot.finished, now)
            if snapshot.finished_text:
                state = msgspec.structs.replace(state, session_text=snapshot.finished_text)
        return state


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data, durable=True, mode=0o600)
