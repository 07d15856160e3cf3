"""Which EVSE a station-wide session cost consumer message belongs to (pure, bounded memory).

EVerest has one session_cost topic for the whole station and SessionCost has no EVSE field; the
per-EVSE session events name the sessions (`session_event.uuid` == `session_cost.session_id`).
EVSEs are identified by their EVSE manager consumer module ids.

Rules:
- session_cost: to the EVSE whose events named its session. On a one-EVSE station, to that EVSE
  right away. With several EVSEs an unnamed session's messages are held (not shown); the
  `event()` that names the session returns them, oldest first, for the caller to apply to that
  EVSE. Sessions given up on (evicted while held, or Finished while still unnamed) are reported
  once each by `take_unassigned()`.
- tariff_message with identifier_type SessionId / TransactionId: like a session_cost of the
  session named by `identifier_id` (or, failing that, by `ocpp_transaction_id`).
- tariff_message with identifier_type IdToken or none: to the EVSEs whose running session carries
  that token (SessionStarted / TransactionStarted id_tag, compared case-insensitively), else to
  every EVSE without a running session (the user who just authorized is at one of them).
- Which session runs on an EVSE, whether one runs that no event named, the token that
  authorized it and whether it waits for a driver are not decided here: the EVSE's display
  state owns those facts (`State.evse_session`, `unnamed_session`, `session_token`,
  `awaiting_authorization`: agent.model.evse), and the router asks it through `EvseSessions`.
  Each event and session_info reaches the router before the display applies it, so the router
  sees the session it changes.
- Events are sent once (QoS 0): a SessionStarted can be missed (broker down, agent restarted
  without state). An EVSE whose session_info says a session is on while no event named it has
  an unnamed session. A cost of a session no EVSE's events named goes to the one EVSE with an
  unnamed session (a guess); with several such EVSEs it is held. An event that names the
  session later corrects a wrong guess: `take_corrections()` says which EVSE showed what it
  should not, and the session's newest message is returned by `event()` for its real EVSE.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Final, Protocol

from msgspec import UNSET

from agent.everest.evse_manager import OUTSIDE_SESSION, SESSION_STATES, SessionEvent, SessionInfo
from agent.everest.session_cost import SessionCost, TariffMessage

Held = SessionCost | TariffMessage

_BY_SESSION: Final = frozenset({"SessionId", "TransactionId"})
# A session cost held this long without an event naming its session is reported (logged once).
UNNAMED_AFTER_S: Final = 60.0


class EvseSessions(Protocol):
    """The owner of each EVSE's running session (in the agent: the EVSE's display state)."""

    def running(self, module_id: str) -> str | None:
        """The id of the session its events say runs on the EVSE, if any."""

    def unnamed(self, module_id: str) -> bool:
        """Its session_info says a session is on that no event named (the start was missed)."""

    def token(self, module_id: str) -> int | None:
        """The salted hash of the token that authorized its running session, if any."""

    def waiting(self, module_id: str) -> bool:
        """Its session started without a token and has no transaction yet (plug, then swipe)."""


class Router:
    """Routes session cost consumer messages to EVSEs by module id, learning from session events."""

    def __init__(self, module_ids: Sequence[str], sessions: EvseSessions, memory: int = 256,
                 held_per_session: int = 8) -> None:
        if not module_ids or len(set(module_ids)) != len(module_ids):
            raise ValueError("module_ids must be non-empty and distinct")
        self.module_ids: tuple[str, ...] = tuple(module_ids)
        self.sessions = sessions
        self._memory = max(1, memory)
        self._held_per_session = max(1, held_per_session)
        self._owner: OrderedDict[str, str] = OrderedDict()  # session id -> module id
        self._held: OrderedDict[str, list[Held]] = OrderedDict()
        self._held_since: dict[str, float] = {}
        self._given_up: list[str] = []
        self._reported: OrderedDict[str, None] = OrderedDict()
        # Modules whose unnamed session ended (its final cost may still come: it is theirs).
        self._unnamed_ended: set[str] = set()
        # Sessions routed by a guess: session id -> (module id, the newest message sent there).
        self._guessed: dict[str, tuple[str, Held]] = {}
        self._corrections: list[tuple[str, str]] = []

    # ---- queries ---------------------------------------------------------------------------

    def take_unassigned(self, now: float = 0.0, after_s: float = UNNAMED_AFTER_S) -> list[str]:
        """Sessions held unnamed for `after_s` (or evicted) since the last call, each once.

        The session cost and EVSE topics are not ordered against each other: a cost that
        arrives a moment before its session's first event is not reported.
        """
        for sid, since in list(self._held_since.items()):
            if now - since >= after_s:
                self._give_up(sid)
                del self._held_since[sid]
        ids, self._given_up = self._given_up, []
        return ids

    def next_report_at(self, after_s: float = UNNAMED_AFTER_S) -> float | None:
        """When take_unassigned() will next have a session to report (None: none held)."""
        return min(self._held_since.values()) + after_s if self._held_since else None

    def take_corrections(self) -> list[tuple[str, str]]:
        """(module id, session id): the EVSEs that were sent a session that is not theirs."""
        out, self._corrections = self._corrections, []
        return out

    # ---- inputs ----------------------------------------------------------------------------

    def event(self, module_id: str, event: SessionEvent) -> list[Held]:
        """Learn from a session event of `module_id`; returns the messages held for its session."""
        if module_id not in self.module_ids:
            raise ValueError(f"unknown EVSE module id {module_id!r}")
        if event.event in OUTSIDE_SESSION or not event.uuid:
            return []
        sid = event.uuid
        # A SessionFinished may be an older session's, repeated late: it proves only where
        # its own session ran, not which session runs there now.
        late = self._correct(module_id, sid, event.event != "SessionFinished")
        self._unnamed_ended.discard(module_id)
        self._remember(sid, module_id)
        self._held_since.pop(sid, None)
        return [*late, *self._held.pop(sid, [])]

    def info(self, module_id: str, info: SessionInfo) -> None:
        """Learn from a session_info of `module_id`: whether a session is on there."""
        if info.state not in SESSION_STATES:
            if self.sessions.unnamed(module_id):  # before this info
                self._unnamed_ended.add(module_id)
        elif self.sessions.running(module_id) is None:
            self._unnamed_ended.discard(module_id)
            if not self.sessions.unnamed(module_id):
                # A new session no event named begins: sessions guessed to have run here
                # before are over and no longer stand in the way of guessing this one.
                for sid in [s for s, (m, _) in self._guessed.items() if m == module_id]:
                    del self._guessed[sid]

    def session_cost(self, msg: SessionCost, now: float = 0.0) -> tuple[str, ...]:
        """The module ids to apply `msg` to; empty when it is held until an event names it."""
        return self._by_session(msg.session_id, msg, now)

    def tariff(self, msg: TariffMessage, now: float = 0.0) -> tuple[str, ...]:
        """The module ids to apply `msg` to; empty when held (session tariff) or nobody fits."""
        if len(self.module_ids) == 1:
            return self.module_ids
        if msg.identifier_type in _BY_SESSION:
            for key in (msg.identifier_id, msg.ocpp_transaction_id):
                if key is not UNSET and self._owner_of(key) is not None:
                    return self._by_session(key, msg, now)
            key = msg.identifier_id if msg.identifier_id is not UNSET else msg.ocpp_transaction_id
            return self._by_session(key, msg, now) if key is not UNSET else ()
        if msg.identifier_id is not UNSET:
            token = _token_key(msg.identifier_id)
            holders = tuple(m for m in self.module_ids if self.sessions.token(m) == token)
            if holders:
                return holders
        # Every EVSE without a running transaction: a free one, or one whose car is plugged in
        # and waits for the driver who just authorized (plug first, then swipe).
        return tuple(m for m in self.module_ids
                     if self.sessions.running(m) is None or self.sessions.waiting(m))

    # ---- internals -------------------------------------------------------------------------

    def _owner_of(self, sid: str) -> str | None:
        """The EVSE whose events named `sid`: it runs there now, or did (remembered)."""
        owner = self._owner.get(sid)
        if owner is None:
            # Its session runs there (named before a restart: the display state kept it).
            owner = next((m for m in self.module_ids if self.sessions.running(m) == sid), None)
            if owner is not None:
                self._remember(sid, owner)
        return owner

    def _by_session(self, sid: str, msg: Held, now: float = 0.0) -> tuple[str, ...]:
        owner = self._owner_of(sid)
        if owner is None and len(self.module_ids) == 1:
            owner = self.module_ids[0]
            self._remember(sid, owner)
        unnamed = {m for m in self.module_ids if self.sessions.unnamed(m)}
        candidates = {m for m in unnamed | (
            self._unnamed_ended if isinstance(msg, SessionCost) and msg.status == "Finished"
            else set()) if not self._guessed_for(m, sid)}  # one guessed session per EVSE
        # Only a cost is guessed: a session tariff may name any session (held until named).
        if owner is None and len(candidates) == 1 and isinstance(msg, SessionCost):
            # The one EVSE with a session no event named (on, or just ended for a final cost):
            # its events were missed (a guess).
            owner = next(iter(candidates))
            self._unnamed_ended.discard(owner)
            self._remember(sid, owner)
            self._held_since.pop(sid, None)
            self._held.pop(sid, None)  # older than `msg`: costs are cumulative
            self._guessed[sid] = (owner, msg)
            while len(self._guessed) > self._memory:
                del self._guessed[next(iter(self._guessed))]
        elif sid in self._guessed:
            self._guessed[sid] = (self._guessed[sid][0], msg)
        if owner is not None:
            self._owner.move_to_end(sid)
            return (owner,)
        queue = self._held.setdefault(sid, [])
        self._held.move_to_end(sid)
        queue.append(msg)
        if len(queue) > self._held_per_session:
            del queue[0]  # costs are cumulative: the newest ones matter
        self._held_since.setdefault(sid, now)
        while len(self._held) > self._memory:
            evicted, _ = self._held.popitem(last=False)
            self._held_since.pop(evicted, None)
            self._give_up(evicted)
        return ()

    def _guessed_for(self, module_id: str, sid: str) -> bool:
        """Another session was already guessed to run unnamed on `module_id`."""
        return any(m == module_id and s != sid for s, (m, _) in self._guessed.items())

    def _correct(self, module_id: str, sid: str, current: bool) -> list[Held]:
        """An event of `module_id` names `sid` (`current`: as running there now): undo guesses
        it proves wrong; the newest message of `sid` when it was guessed to be elsewhere."""
        late: list[Held] = []
        guess = self._guessed.pop(sid, None)
        if guess is not None and guess[0] != module_id:
            self._corrections.append((guess[0], sid))
            late.append(guess[1])
        for other, (module, _) in list(self._guessed.items()):
            if current and module == module_id:  # it runs `sid`, not the one guessed there
                del self._guessed[other]
                self._owner.pop(other, None)
                self._corrections.append((module_id, other))
        return late

    def _remember(self, sid: str, module_id: str) -> None:
        self._owner[sid] = module_id
        self._owner.move_to_end(sid)
        while len(self._owner) > self._memory:
            self._owner.popitem(last=False)

    def _give_up(self, sid: str) -> None:
        if sid in self._reported:
            return
        self._reported[sid] = None
        while len(self._reported) > self._memory:
            self._reported.popitem(last=False)
        self._given_up.append(sid)


def token_key(value: str) -> int:
    """What the router compares a token by (see `_token_key`)."""
    return _token_key(value)


def _token_key(value: str) -> int:
    """A per-process salted hash of a token (str hashes are randomised per process)."""
    return hash(value.casefold())
