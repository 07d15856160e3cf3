"""The backend's display messages (OCPP SetDisplayMessage through EVerest): which are kept, and
which one each display shows now. Pure: the caller passes the clocks and what runs where.

Rules (OCPP 2.0.1 MessageInfo as EVerest's display_message API carries it):
- `id` is required: get and clear name messages by it. The same id replaces a message; a new
  `AlwaysFront` replaces every other `AlwaysFront`. At most `max_messages` are kept.
- `priority` (default NormalCycle): the newest AlwaysFront shows over everything; InFront
  messages take turns (every `cycle_s`) over the agent's own screen; NormalCycle messages take
  turns with the agent's own screen (one slot each, the agent's screen one slot).
- `state`: shown only while the display is in that situation (Charging, Idle, Suspending,
  Discharging, Unavailable = EVerest's link down); without it, in every one. `Faulted` is not
  supported: EVerest's consumer APIs say nothing of faults (NotSupportedState).
- `timestamp_from` / `timestamp_to`: a window on the wall clock (the one place the wall clock
  decides); a message is removed once its end has passed.
- `identifier_id` / `identifier_type` (default SessionId): bound to a session (SessionId, or
  TransactionId: EVerest's OCPP 2.0.1 transaction id is the session uuid) that must be running
  (else UnknownTransaction), or to the token that starts a session (IdToken: held until a
  session starts with it). Shown on that session's display only; removed when it ends.
- HTML becomes text; URI and QRCODE formats and `qr_code` become a QR code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Final

import msgspec
from msgspec import UNSET

from agent.everest.display_message import (
    ClearReply,
    DisplayMessage,
    GetFilter,
    GetReply,
    MessageState,
    Priority,
    SetReply,
)
from agent.model.state import State
from agent.model.text import choose
from agent.model.view import ShownMessage
from agent.structs import Record

# A QR code holds at most 2331 bytes at error correction M (version 40, byte mode).
QR_MAX_BYTES: Final = 2331
Situation = MessageState


class Kept(Record):
    """A message as kept: what was set (for get), and what the rules need of it."""

    message: DisplayMessage
    id: int
    priority: Priority
    seq: int  # arrival order: turns are taken in it
    text: str | None
    qr_code: str | None
    start: float | None = None  # wall clock (Unix time)
    end: float | None = None
    session: str | None = None  # bound to this session
    token: int | None = None  # bound to the session this token will start (a salted hash)


class Board(Record):
    """Every kept message, in arrival order."""

    messages: tuple[Kept, ...] = ()
    seq: int = 0


class Display(Record):
    """What the rules need to know of one display."""

    situation: Situation
    sessions: frozenset[str] = frozenset()  # the session(s) on it now


class Sessions(Record):
    """What runs where, as the rules need it: the running sessions' ids, and a token's hash ->
    the running session it started (the token itself is never kept)."""

    running: frozenset[str] = frozenset()
    by_token: Mapping[int, str] = msgspec.field(default_factory=dict)


TokenKey = Callable[[str], int]


def set_messages(board: Board, request: Sequence[DisplayMessage], wall: float,
                 sessions: Sessions, token_key: TokenKey, languages: tuple[str, ...],
                 max_messages: int) -> tuple[Board, SetReply]:
    """Store the request's messages, all or none; the reply EVerest passes to the CSMS."""
    kept: list[Kept] = []
    seq = board.seq
    for message in request:
        outcome = _prepare(message, seq, wall, sessions, token_key, languages)
        if isinstance(outcome, SetReply):
            return board, outcome
        kept.append(outcome)
        seq += 1
    messages = list(board.messages)
    for new in kept:
        messages = [m for m in messages if m.id != new.id and not (
            new.priority == "AlwaysFront" and m.priority == "AlwaysFront")]
        messages.append(new)
    if len(messages) > max_messages:
        return board, SetReply("Rejected", f"at most {max_messages} messages are kept")
    return Board(tuple(messages), seq), SetReply("Accepted")


def _prepare(message: DisplayMessage, seq: int, wall: float, sessions: Sessions,
             token_key: TokenKey, languages: tuple[str, ...]) -> Kept | SetReply:
    message_id = message.id
    if message_id is UNSET:
        return SetReply("Rejected", "id is required (get and clear name messages by id)")
    if message.state == "Faulted":
        return SetReply("NotSupportedState", "this display cannot tell a faulted EVSE")
    content = message.message
    link = content.format in ("URI", "QRCODE")
    if link and len(content.content.encode()) > QR_MAX_BYTES:
        return SetReply("NotSupportedMessageFormat", "too long for a QR code")
    qr = message.qr_code if message.qr_code is not UNSET else None
    if qr is not None and len(qr.encode()) > QR_MAX_BYTES:
        return SetReply("Rejected", "qr_code: too long for a QR code")
    chosen = choose([content], languages)
    text = chosen.text.strip() if chosen.text else None
    qr = qr or chosen.qr_code
    if not text and not qr:
        return SetReply("Rejected", "message: no text to show")
    window: list[float | None] = []
    for key in ("timestamp_from", "timestamp_to"):
        stamp = getattr(message, key)
        parsed = _unix_time(stamp) if stamp is not UNSET else None
        if stamp is not UNSET and parsed is None:
            return SetReply("Rejected", f"{key}: not an RFC 3339 date-time")
        window.append(parsed)
    start, end = window
    if end is not None and (end <= wall or (start is not None and end <= start)):
        return SetReply("Rejected", "timestamp_to: the window is over")
    session = token = None
    if message.identifier_id is not UNSET:
        ident = message.identifier_id
        kind = message.identifier_type if message.identifier_type is not UNSET else "SessionId"
        if kind == "IdToken":
            token = token_key(ident)
            session = sessions.by_token.get(token)
            token = None if session is not None else token
            # The driver's token is never kept: only its hash, or the session it started.
            message = msgspec.structs.replace(message, identifier_id=UNSET)
        elif ident in sessions.running:
            session = ident
        else:
            return SetReply("UnknownTransaction", f"no EVSE runs the {kind} {ident}")
    priority: Priority = message.priority if message.priority is not UNSET else "NormalCycle"
    return Kept(message, message_id, priority, seq, text or None, qr, start, end, session,
                token)


def get_messages(board: Board, query: GetFilter) -> GetReply:
    """The kept messages matching every filter given, in arrival order."""
    found = [m.message for m in board.messages
             if (query.id is UNSET or m.id in query.id)
             and (query.priority is UNSET or m.priority == query.priority)
             and (query.state is UNSET or m.message.state == query.state)]
    return GetReply(messages=found)


def clear_message(board: Board, message_id: int) -> tuple[Board, ClearReply]:
    """Remove the message `message_id`: Accepted, or Unknown when none has that id."""
    left = tuple(m for m in board.messages if m.id != message_id)
    if len(left) == len(board.messages):
        return board, ClearReply("Unknown")
    return msgspec.structs.replace(board, messages=left), ClearReply("Accepted")


def tidy(board: Board, wall: float, sessions: Sessions) -> Board:
    """Drop expired messages and those of ended sessions; bind a token's messages to the
    session the token started."""
    out: list[Kept] = []
    for kept in board.messages:
        if kept.end is not None and kept.end <= wall:
            continue
        if kept.session is not None and kept.session not in sessions.running:
            continue
        if kept.token is not None and kept.token in sessions.by_token:
            out.append(msgspec.structs.replace(kept, session=sessions.by_token[kept.token],
                                               token=None))
        else:
            out.append(kept)
    if len(out) == len(board.messages) and all(a is b for a, b in zip(out, board.messages,
                                                                       strict=True)):
        return board
    return msgspec.structs.replace(board, messages=tuple(out))


def pick(board: Board, display: Display, wall: float, mono: float,
         cycle_s: float) -> ShownMessage | None:
    """The message `display` shows now, or None for the agent's own screen."""
    shown = [m for m in board.messages if _shows(m, display, wall)]
    front = [m for m in shown if m.priority == "AlwaysFront"]
    if front:
        return _on_screen(front[-1])
    turn = int(mono // cycle_s)
    infront = [m for m in shown if m.priority == "InFront"]
    if infront:
        return _on_screen(infront[turn % len(infront)])
    normal = [m for m in shown if m.priority == "NormalCycle"]
    slot = turn % (len(normal) + 1)
    return _on_screen(normal[slot - 1]) if slot else None


def next_change(board: Board, wall: float, mono: float, cycle_s: float) -> float | None:
    """The monotonic time at which `pick` may answer differently without any event: the next
    turn while messages take turns, the next window edge (re-checked at least every minute, so
    that a wall clock set forward or back is noticed)."""
    if not board.messages:
        return None
    deadlines = []
    if len(board.messages) > 1 or board.messages[0].priority == "NormalCycle":
        deadlines.append((mono // cycle_s + 1) * cycle_s)
    edges = [t for m in board.messages for t in (m.start, m.end) if t is not None and t > wall]
    if edges:
        deadlines.append(mono + min(min(edges) - wall, 60.0))
    elif any(m.start is not None or m.end is not None for m in board.messages):
        deadlines.append(mono + 60.0)
    return min(deadlines) if deadlines else None


def _shows(kept: Kept, display: Display, wall: float) -> bool:
    if kept.start is not None and wall < kept.start:
        return False
    if kept.end is not None and wall >= kept.end:
        return False
    if kept.token is not None:
        return False  # its session has not started yet
    if kept.session is not None and kept.session not in display.sessions:
        return False
    state = kept.message.state
    return state is UNSET or state == display.situation


def _on_screen(kept: Kept) -> ShownMessage:
    return ShownMessage(kept.id, kept.text, kept.qr_code, kept.priority)


def situation(state: State) -> Situation:
    """The display's situation, as a message's `state` names it."""
    live = state.live
    if not state.link_up or (live is not None and live.state == "Disabled"):
        return "Unavailable"
    if not (state.running or state.evse_session is not None or state.unnamed_session):
        return "Idle"
    if live is not None and live.latest_total_w < 0:
        return "Discharging"
    if (live is not None and live.state in ("ChargingPausedEV", "ChargingPausedEVSE")) or (
            state.session is not None and state.session.status == "Idle"):
        return "Suspending"
    return "Charging"


def display_of(state: State) -> Display:
    """What the rules need of the display in `state`: its situation and its session(s)."""
    sessions = {state.evse_session} if state.evse_session is not None else set()
    if state.running and state.session is not None:
        sessions.add(state.session.session_id)
    if state.restored_session is not None:
        sessions.add(state.restored_session)
    return Display(situation(state), frozenset(sessions))


def _unix_time(stamp: str) -> float | None:
    try:
        parsed = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return parsed.timestamp() if parsed.tzinfo is not None else None

