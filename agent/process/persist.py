"""The display snapshot kept across restarts and reboots (written with agent.atomic)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

import msgspec

from agent.atomic import remove_stale_temps, write_atomic
from agent.everest.session_cost import DefaultPrice, MessageContent, SessionCost
from agent.lanes import Lane
from agent.model.display import DisplayModel
from agent.model.state import State
from agent.model.view import SignedMeter

log = logging.getLogger(__name__)


class Receipt(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """The session on the finished screen, and when it finished by both clocks and boot."""

    session: SessionCost
    ended_mono: float
    ended_wall: float
    boot_id: str
    text: list[MessageContent] | None = None
    final: bool = True
    # Eichrecht: the transaction's signed meter values, the JSON text EVerest sent, unchanged
    # (as strings: msgspec decodes a Raw only where it is the whole type, not `Raw | None`).
    signed_start: str | None = None
    signed_end: str | None = None


class Snapshot(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """What a reboot must not lose: the price text and the receipt still on screen."""

    default_price: DefaultPrice | None = None
    receipt: Receipt | None = None
    # With [[evse]]: the session running on the EVSE (session events are not retained, so a
    # restarted agent would not learn it before its end; restored within the same boot only)
    # EVerest's EVSE id and the meter's OCMF public key (published once, at EVerest's start).
    boot_id: str = ""
    evse_session: str | None = None
    evse_id: str | None = None
    meter_public_key: str | None = None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Snapshot)
SNAPSHOT_NAME = "display-state.json"
BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"


def encode_snapshot(snapshot: Snapshot) -> bytes:
    """Snapshot as JSON (optional message fields stay absent, as EVerest sends them)."""
    return _encoder.encode(snapshot)


def read_boot_id(path: str = BOOT_ID_PATH) -> str:
    """The kernel's id of this boot ("" when it cannot be read)."""
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""


def _text(raw: msgspec.Raw | None) -> str | None:
    return None if raw is None else bytes(raw).decode()


def _signed(receipt: Receipt) -> SignedMeter | None:
    """The receipt's signed meter values, the bytes EVerest sent (UTF-8 JSON text)."""
    start, end = receipt.signed_start, receipt.signed_end
    if start is None and end is None:
        return None
    return SignedMeter(start=None if start is None else msgspec.Raw(start.encode()),
                       end=None if end is None else msgspec.Raw(end.encode()))


def remaining_hold(receipt: Receipt, boot_id: str, now_mono: float, now_wall: float,
                   hold_s: float) -> float | None:
    """Seconds the restored receipt stays on screen, or None when its hold is over."""
    if boot_id and receipt.boot_id == boot_id:
        # Same boot: the monotonic clock is exact and immune to NTP steps.
        left = receipt.ended_mono + hold_s - now_mono
        return left if left > 0 else None
    elapsed = now_wall - receipt.ended_wall
    if elapsed < 0:
        # The wall clock went backwards (not yet synced after the reboot): the full hold.
        return hold_s
    left = hold_s - elapsed
    return left if left > 0 else None


def load_snapshot(state_dir: str, name: str = SNAPSHOT_NAME) -> tuple[Snapshot, str | None]:
    """The saved snapshot, or an empty one and the reason it could not be used."""
    if not state_dir:
        return Snapshot(), None
    path = os.path.join(state_dir, name)
    try:
        with open(path, "rb") as handle:
            return _decoder.decode(handle.read()), None
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

    def __init__(self, state_dir: str, hold_s: float, name: str = SNAPSHOT_NAME) -> None:
        self.state_dir = state_dir
        self.hold_s = hold_s
        self.name = name
        self.saved = Snapshot()
        self._lane = Lane(f"state-{name}")  # a stalled disk holds this snapshot's saves only
        self.boot_id = ""
        self._pending: tuple[State, float, float] | None = None
        self._wake = asyncio.Event()
        self._closing = False
        # The write thread in flight: a cancelled save leaves it running, so the next save
        # waits for it and can never be overtaken by it.
        self._inflight: asyncio.Future[None] | None = None

    def snapshot_of(self, state: State, now_mono: float, now_wall: float) -> Snapshot:
        """What of `state` must survive a reboot."""
        session, ended = state.session, state.ended_at
        receipt = None
        if session is not None and ended is not None:
            signed = state.signed_for(session.session_id)
            receipt = Receipt(session=session, ended_mono=ended,
                              ended_wall=now_wall - (now_mono - ended), boot_id=self.boot_id,
                              text=state.session_text, final=state.final,
                              signed_start=_text(signed.start) if signed else None,
                              signed_end=_text(signed.end) if signed else None)
        return Snapshot(default_price=state.default_price, receipt=receipt,
                        boot_id=self.boot_id if state.evse_session else "",
                        evse_session=state.evse_session, evse_id=state.evse_id,
                        meter_public_key=state.meter_public_key)

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
        # First the write in flight (a cancelled save leaves its thread running): only then is
        # `saved` what the disk will hold, and the newest request the last write to land.
        previous = self._inflight
        if previous is not None and not previous.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(previous)
        snapshot = self.snapshot_of(state, now_mono, now_wall)
        if _same(snapshot, self.saved):
            return
        path = os.path.join(self.state_dir, self.name)
        inflight = asyncio.ensure_future(
            self._lane.call(_write_private, path, encode_snapshot(snapshot)))
        self._inflight = inflight

        def landed(done: asyncio.Future[None], snapshot: Snapshot = snapshot) -> None:
            # Also when this save's waiter was cancelled: the disk holds it all the same.
            if not done.cancelled() and done.exception() is None:
                self.saved = snapshot

        inflight.add_done_callback(landed)
        try:
            # Shielded: a write in flight finishes even when the stop cancels its waiter.
            await asyncio.shield(inflight)
        except OSError as exc:
            log.warning("state file %s: %s", path, exc)

    async def restore(self, model: DisplayModel, state: State, now_mono: float,
                      now_wall: float) -> State:
        """`state` with the saved default price and the receipt (for the rest of its hold)."""
        snapshot, problem, self.boot_id, removed = await self._lane.call(self._load)
        if removed:
            log.info("removed %d temp file(s) left by an interrupted write", removed)
        if problem:
            log.warning("ignoring saved state: %s", problem)
        self.saved = snapshot
        if snapshot.default_price is not None:
            state = model.update(state, snapshot.default_price, now_mono)
        if snapshot.evse_session and snapshot.boot_id and snapshot.boot_id == self.boot_id:
            state = msgspec.structs.replace(state, evse_session=snapshot.evse_session)
        if snapshot.evse_id:
            state = msgspec.structs.replace(state, evse_id=snapshot.evse_id)
        if snapshot.meter_public_key:
            state = msgspec.structs.replace(state, meter_public_key=snapshot.meter_public_key)
        receipt = snapshot.receipt
        if receipt is not None:
            left = remaining_hold(receipt, self.boot_id, now_mono, now_wall, self.hold_s)
            if left is not None:
                state = model.receipt(state, receipt.session, receipt.text, receipt.final,
                                      ended_at=now_mono - (self.hold_s - left),
                                      signed=_signed(receipt))
        return state

    def _load(self) -> tuple[Snapshot, str | None, str, int]:
        removed = remove_stale_temps(self.state_dir) if self.state_dir else 0
        snapshot, problem = load_snapshot(self.state_dir, self.name)
        return snapshot, problem, read_boot_id(), removed


def _same(a: Snapshot, b: Snapshot) -> bool:
    # The wall time of a receipt is derived anew at every save; it is not a change.
    if (a.default_price, a.evse_session, a.evse_id, a.meter_public_key) != (
            b.default_price, b.evse_session, b.evse_id, b.meter_public_key):
        return False
    if a.receipt is None or b.receipt is None:
        return a.receipt is b.receipt
    return msgspec.structs.replace(a.receipt, ended_wall=0.0) == msgspec.structs.replace(
        b.receipt, ended_wall=0.0)


def _write_private(path: str, data: bytes) -> None:
    write_atomic(path, data, durable=True, mode=0o600, parents=True)
