"""The display snapshot's file: read at start, written after each change (with agent.atomic).
What it holds, and how a restarted core takes it back, is agent.core.snapshot's."""

from __future__ import annotations

import asyncio
import logging
import os

import msgspec

from agent.atomic import remove_stale_temps, write_atomic
from agent.core.snapshot import (
    SNAPSHOT_NAME,
    Snapshot,
    decode_snapshot,
    encode_snapshot,
    same_snapshot,
    snapshot_of,
)
from agent.lanes import FileKeeper, Lane
from agent.model.state import State

log = logging.getLogger(__name__)
BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"


def read_boot_id(path: str = BOOT_ID_PATH) -> str:
    """The kernel's id of this boot ("" when it cannot be read)."""
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""


def load_snapshot(state_dir: str, name: str = SNAPSHOT_NAME) -> tuple[Snapshot, str | None]:
    """The saved snapshot, or an empty one and the reason it could not be used."""
    if not state_dir:
        return Snapshot(), None
    path = os.path.join(state_dir, name)
    try:
        with open(path, "rb") as handle:
            return decode_snapshot(handle.read()), None
    except FileNotFoundError:
        return Snapshot(), None
    except (OSError, msgspec.DecodeError) as exc:
        return Snapshot(), f"{path}: {exc}"


class SnapshotKeeper:
    """The one writer of the snapshot: saves the newest state when it changes, off the loop.

    Writes are serialised: each waits for the write thread before it, also when that one's
    waiter was cancelled (a stop cancels the task group), so the save made at stop is the last
    one to land.
    """

    def __init__(self, state_dir: str, name: str = SNAPSHOT_NAME) -> None:
        self.state_dir = state_dir
        self.name = name
        self.saved = Snapshot()
        self._lane = Lane(f"state-{name}")  # a stalled disk holds this snapshot's saves only
        self.boot_id = ""
        self._pending: tuple[State, float, float] | None = None
        self._wake = asyncio.Event()
        self._closing = False
        # A cancelled save leaves its write running: the next one waits for it.
        self._writer = FileKeeper(self._lane)

    def request(self, state: State, now_mono: float, now_wall: float) -> None:
        """Have the writer save `state` (only the newest requested state is written)."""
        self._pending = (state, now_mono, now_wall)
        self._wake.set()

    async def run(self) -> None:
        """Write requested snapshots until close(); returns once the last one is written."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            pending, self._pending = self._pending, None
            if pending is not None:
                await self._save(*pending)
            if self._closing and self._pending is None:
                return

    def close(self) -> None:
        """Make run() return after writing what is pending."""
        self._closing = True
        self._wake.set()

    async def _save(self, state: State, now_mono: float, now_wall: float) -> None:
        if not self.state_dir:
            return
        # First the write in flight: only then is `saved` what the disk will hold.
        await self._writer.settled()
        snapshot = snapshot_of(state, now_mono, now_wall, self.boot_id)
        if same_snapshot(snapshot, self.saved):
            return
        path = os.path.join(self.state_dir, self.name)

        def landed(snapshot: Snapshot = snapshot) -> None:
            self.saved = snapshot
        try:
            await self._writer.write(_write_private, path, encode_snapshot(snapshot),
                                     landed=landed)
        except OSError as exc:
            log.warning("state file %s: %s", path, exc)

    async def load(self) -> Snapshot:
        """The saved snapshot (an empty one when there is none or it is unusable, logged);
        also learns the boot id that the saves then carry."""
        snapshot, problem, self.boot_id, removed = await self._lane.call(self._load)
        if removed:
            log.info("removed %d temp file(s) left by an interrupted write", removed)
        if problem:
            log.warning("ignoring saved state: %s", problem)
        self.saved = snapshot
        return snapshot

    def _load(self) -> tuple[Snapshot, str | None, str, int]:
        removed = remove_stale_temps(self.state_dir) if self.state_dir else 0
        snapshot, problem = load_snapshot(self.state_dir, self.name)
        return snapshot, problem, read_boot_id(), removed


def _write_private(path: str, data: bytes) -> None:
    write_atomic(path, data, durable=True, mode=0o600, parents=True)
