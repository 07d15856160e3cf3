"""The agent as EVerest's display: its display_message API module (requests in, replies out),
the messages kept (one owner: `board`) and what each display shows of them.

The rules are pure (agent.model.display_messages); here are the topics, the counters and the
reply topic check; the clocks are passed in. Messages survive a restart (the shell keeps
their file) until they expire or are cleared, except those waiting for a token's session (the
token is never kept).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final

import msgspec

from agent.core.counters import Counters
from agent.core.display import Display
from agent.core.effects import Effects
from agent.core.watch import ApiWatch
from agent.everest import display_message as api
from agent.everest.session_cost import DecodeError, Heartbeat
from agent.everest.session_cost import decode as decode_heartbeat
from agent.model.display_messages import (
    Board,
    Sessions,
    clear_message,
    display_of,
    get_messages,
    next_change,
    pick,
    set_messages,
    tidy,
)
from agent.model.routing import token_key
from agent.model.state import MessageShown
from agent.model.text import preferences
from agent.settings.config import Config, DisplayMessagesConfig

log = logging.getLogger(__name__)

TOPICS: Final = (*api.TOPICS, "heartbeat")
_DEFAULT_REPLY: Final[dict[str, api.Reply]] = {
    "set_display_message": api.SetReply("Rejected"),
    "get_display_message": api.GetReply(messages=[]),
    "clear_display_message": api.ClearReply("Unknown"),
}


class MessageDesk:
    """EVerest's display_message API for the whole station."""

    def __init__(self, config: Config, started: float) -> None:
        settings = config.display_messages
        assert settings is not None
        self.settings: DisplayMessagesConfig = settings
        self.base = settings.base(config.everest.topic_prefix)
        self.reply_prefix = self.base + "m2e/reply/"
        self.watch = ApiWatch("display_message", self.base, config.watchdog.heartbeat_timeout_s)
        self.counters = Counters(started, TOPICS, label=f"{settings.module_id}/")
        self.languages = preferences(config.display.languages)
        self.limit = config.mqtt.max_payload_bytes
        self.board = Board()
        self._dirty = False

    def topics(self) -> dict[str, str]:
        """Topic -> request name, for the broker link's subscriptions."""
        return {self.base + "e2m/" + name: name for name in TOPICS}

    # ---- requests ----------------------------------------------------------------------

    def heartbeat(self, payload: bytes, now: float, wall: float) -> int | None:
        """The heartbeat id of a heartbeat payload, or None (counted and logged)."""
        if self.counters.admit("heartbeat", payload, now, self.limit, wall):
            try:
                beat = decode_heartbeat("heartbeat", payload)
            except DecodeError as exc:
                self.counters.reject("heartbeat", exc.reason, payload, now, wall)
                return None
            return beat.id if isinstance(beat, Heartbeat) else None
        return None

    def request(self, name: str, payload: bytes, now: float, wall: float,
                sessions: Sessions) -> tuple[str, bytes] | None:
        """Apply one request; the reply to publish (topic, payload), if one is wanted."""
        if not self.counters.admit(name, payload, now, self.limit, wall):
            return None
        try:
            reply_to, request = api.decode(name, payload)
        except api.RequestError as exc:
            self.counters.reject(name, exc.reason, payload, now, wall)
            if exc.reply_to is None or not self._ours(exc.reply_to, name, payload, now, wall):
                return None
            answer = _DEFAULT_REPLY[name]
            if isinstance(answer, api.SetReply):
                answer = api.SetReply("Rejected", f"not a valid request: {exc.reason}"[:200])
            return exc.reply_to, api.encode(answer)
        if reply_to is not None and not self._ours(reply_to, name, payload, now, wall):
            return None  # changes nothing: an answer would go where EVerest does not listen
        reply: api.Reply
        if isinstance(request, api.GetFilter):
            reply = get_messages(self.board, request)
        elif isinstance(request, api.ClearId):
            reply = self._store(*clear_message(self.board, request.id))
        else:
            reply = self._store(*set_messages(self.board, request, wall, sessions,
                                              token_key, self.languages,
                                              self.settings.max_messages))
        return (reply_to, api.encode(reply)) if reply_to is not None else None

    def _store(self, board: Board, reply: api.Reply) -> api.Reply:
        """Keep `board` (and have it saved) when it changed; the reply to send."""
        if board is not self.board:
            self.board = board
            self._dirty = True
        return reply

    def _ours(self, reply_to: str, name: str, payload: bytes, now: float, wall: float) -> bool:
        """Replies go only to this module's reply topics (as EVerest makes them): a request
        must not make the agent publish anywhere else."""
        rest = reply_to.removeprefix(self.reply_prefix)
        if rest != reply_to and rest and not set(rest) & {"/", "+", "#", "\0"}:
            return True
        self.counters.reject(name, f"replyTo is not under {self.reply_prefix}", payload, now,
                             wall)
        return False

    # ---- what each display shows -------------------------------------------------------

    def show(self, displays: Sequence[Display], now: float, wall: float,
             fx: Effects) -> list[Display]:
        """Drop what expired or ended, then give each display the message it shows now; the
        displays whose state changed."""
        if not self.board.messages and all(p.state.display_message is None for p in displays):
            return []  # nothing kept, nothing shown: every message and tick goes through here
        sessions = self.sessions(displays)
        board = tidy(self.board, wall, sessions)
        if board is not self.board:
            self.board = board
            self._dirty = True
        changed = []
        for display in displays:
            shown = pick(self.board, display_of(display.state), wall, now, self.settings.cycle_s)
            if display.apply(MessageShown(shown), now, fx):
                changed.append(display)
        return changed

    @staticmethod
    def sessions(displays: Sequence[Display]) -> Sessions:
        """What runs where: every display's sessions, and the session each token started (as
        each EVSE's display state holds them)."""
        running = frozenset(s for p in displays for s in display_of(p.state).sessions)
        by_token = {p.state.session_token: p.state.evse_session for p in displays
                    if p.state.session_token is not None and p.state.evse_session is not None}
        return Sessions(running, by_token)

    def status(self, now: float, wall: float, connected: bool) -> dict[str, object]:
        """The module's part of the status file."""
        return self.counters.snapshot(now, wall, self.watch, module_id=self.settings.module_id,
                                      link="up" if connected and self.watch.ok else "down",
                                      messages=len(self.board.messages))

    def deadline(self, now: float, wall: float) -> float | None:
        """When what a display shows changes next without any message (monotonic)."""
        return next_change(self.board, wall, now, self.settings.cycle_s)

    # ---- the file (read and written by the shell) --------------------------------------

    def load(self, data: bytes) -> None:
        """The messages of the previous run, from its file; expired ones dropped by the first
        show()."""
        try:
            self.board = msgspec.json.decode(data, type=Board)
        except (msgspec.DecodeError, ValueError) as exc:
            log.warning("display messages: the saved file is not usable (%s): starting "
                        "without", str(exc)[:100])

    def take_changed(self) -> Board | None:
        """The board to save when it changed since the last call (else None)."""
        if not self._dirty:
            return None
        self._dirty = False
        return self.board


def encode_board(board: Board) -> bytes:
    """The file's content: every message but those waiting for a token's session (its token
    hash is salted per process, and the token itself is never written anywhere)."""
    return msgspec.json.encode(msgspec.structs.replace(board, messages=tuple(
        m for m in board.messages if m.token is None)))
