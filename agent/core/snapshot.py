"""What of a display survives a restart or reboot, and how a new core takes it back (pure:
the caller passes the clocks and the boot id; agent.process.persist reads and writes the file).
"""

from __future__ import annotations

import msgspec

from agent.everest.session_cost import DefaultPrice, MessageContent, SessionCost
from agent.model.display import DisplayModel
from agent.model.state import State
from agent.model.view import SignedMeter


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
    # Without [[evse]]: the session its costs said was running (same boot only), so that the
    # display messages bound to it outlive a restart (its next cost names it again).
    session_id: str | None = None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Snapshot)
SNAPSHOT_NAME = "display-state.json"


def encode_snapshot(snapshot: Snapshot) -> bytes:
    """Snapshot as JSON (optional message fields stay absent, as EVerest sends them)."""
    return _encoder.encode(snapshot)


def decode_snapshot(data: bytes) -> Snapshot:
    """A saved snapshot (raises msgspec.DecodeError when it is not one)."""
    return _decoder.decode(data)


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


def snapshot_of(state: State, now_mono: float, now_wall: float, boot_id: str) -> Snapshot:
    """What of `state` must survive a reboot."""
    session, ended = state.session, state.ended_at
    receipt = None
    if session is not None and ended is not None:
        signed = state.signed_for(session.session_id)
        receipt = Receipt(session=session, ended_mono=ended,
                          ended_wall=now_wall - (now_mono - ended), boot_id=boot_id,
                          text=state.session_text, final=state.final,
                          signed_start=_text(signed.start) if signed else None,
                          signed_end=_text(signed.end) if signed else None)
    running = (state.session.session_id if state.running and state.session is not None
               else state.restored_session)
    return Snapshot(default_price=state.default_price, receipt=receipt,
                    boot_id=boot_id if state.evse_session or running else "",
                    evse_session=state.evse_session, evse_id=state.evse_id,
                    meter_public_key=state.meter_public_key, session_id=running)


def restored(model: DisplayModel, state: State, snapshot: Snapshot, boot_id: str,
             now_mono: float, now_wall: float, hold_s: float) -> State:
    """`state` with the saved default price and the receipt (for the rest of its hold)."""
    replace = msgspec.structs.replace
    if snapshot.default_price is not None:
        state = model.update(state, snapshot.default_price, now_mono)
    same_boot = bool(snapshot.boot_id) and snapshot.boot_id == boot_id
    if snapshot.evse_session and same_boot:
        state = replace(state, evse_session=snapshot.evse_session)
    if snapshot.session_id and same_boot and model.evse is None:
        state = model.restore_session(state, snapshot.session_id, now_mono)
    if snapshot.evse_id:
        state = replace(state, evse_id=snapshot.evse_id)
    if snapshot.meter_public_key:
        state = replace(state, meter_public_key=snapshot.meter_public_key)
    receipt = snapshot.receipt
    if receipt is not None:
        left = remaining_hold(receipt, boot_id, now_mono, now_wall, hold_s)
        if left is not None:
            state = model.receipt(state, receipt.session, receipt.text, receipt.final,
                                  ended_at=now_mono - (hold_s - left), signed=_signed(receipt))
    return state


def same_snapshot(a: Snapshot, b: Snapshot) -> bool:
    """The two hold the same (a save of `a` over `b` would change nothing that counts)."""
    # The wall time of a receipt is derived anew at every save; it is not a change.
    if (a.default_price, a.evse_session, a.evse_id, a.meter_public_key, a.session_id,
            a.boot_id) != (b.default_price, b.evse_session, b.evse_id, b.meter_public_key,
                           b.session_id, b.boot_id):
        return False
    if a.receipt is None or b.receipt is None:
        return a.receipt is b.receipt
    return msgspec.structs.replace(a.receipt, ended_wall=0.0) == msgspec.structs.replace(
        b.receipt, ended_wall=0.0)


