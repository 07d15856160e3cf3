"""The agent as EVerest's display: its display_message API module (requests in, replies out),
the messages kept (one owner: `board`), what each display shows of them, and their file.

The rules are pure (agent.model.display_messages); here are the topics, the counters, the
reply topic check, the wall clock and the state file. Messages survive a restart until they
expire or are cleared, except those waiting for a token's session (the token is never kept).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence
from typing import Final

import msgspec

from agent.atomic import write_atomic
from agent.everest import display_message as api
from agent.everest.session_cost import DecodeError, Heartbeat
from agent.everest.session_cost import decode as decode_heartbeat
from agent.lanes import Lane
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
from agent.model.routing import Router, token_key
from agent.model.state import MessageShown
from agent.model.text import preferences
from agent.process.panel import Panel
from agent.process.status import Counters
from agent.process.supervise import ApiWatch
from agent.settings.config import Config, DisplayMessagesConfig

log = logging.getLogger(__name__)

FILE_NAME: Final = "display-messages.json"
TOPICS: Final = (*api.TOPICS, "heartbeat")
_DEFAULT_REPLY: Final[dict[str, api.Reply]] = {
    "set_display_message": api.SetReply("Rejected"),
    "get_display_message": api.GetReply(messages=[]),
    "clear_display_message": api.ClearReply("Unknown"),
}


class MessageDesk:
    """EVerest's display_message API for the whole station."""

    def __init__(self, config: Config, now: float) -> None:
        settings = config.display_messages
        assert settings is not None
        self.settings: DisplayMessagesConfig = settings
        self.base = settings.base(config.everest.topic_prefix)
        self.reply_prefix = self.base + "m2e/reply/"
        self.watch = ApiWatch("display_message", self.base, config.watchdog.heartbeat_timeout_s)
        self.counters = Counters(now, TOPICS, label=f"{settings.module_id}/")
        self.languages = preferences(config.display.languages)
        self.limit = config.mqtt.max_payload_bytes
        self.board = Board()
        self.path = os.path.join(config.state.dir, FILE_NAME) if config.state.dir else None
        self._lane = Lane("messages")  # its file, apart from the snapshots and the outputs
        self._dirty = asyncio.Event()

    def topics(self) -> dict[str, str]:
        """Topic -> request name, for the broker link's subscriptions."""
        return {self.base + "e2m/" + name: name for name in TOPICS}

    # ---- requests ----------------------------------------------------------------------

    def heartbeat(self, payload: bytes, now: float) -> int | None:
        """The heartbeat id of a heartbeat payload, or None (counted and logged)."""
        if self.counters.admit("heartbeat", payload, now, self.limit):
            try:
                beat = decode_heartbeat("heartbeat", payload)
            except DecodeError as exc:
                self.counters.reject("heartbeat", exc.reason, payload, now)
                return None
            return beat.id if isinstance(beat, Heartbeat) else None
        return None

    def request(self, name: str, payload: bytes, now: float,
                sessions: Sessions) -> tuple[str, bytes] | None:
        """Apply one request; the reply to publish (topic, payload), if one is wanted."""
        if not self.counters.admit(name, payload, now, self.limit):
            return None
        try:
            reply_to, request = api.decode(name, payload)
        except api.RequestError as exc:
            self.counters.reject(name, exc.reason, payload, now)
            if exc.reply_to is None or not self._ours(exc.reply_to, name, payload, now):
                return None
            answer = _DEFAULT_REPLY[name]
            if isinstance(answer, api.SetReply):
                answer = api.SetReply("Rejected", f"not a valid request: {exc.reason}"[:200])
            return exc.reply_to, api.encode(answer)
        if reply_to is not None and not self._ours(reply_to, name, payload, now):
            return None  # changes nothing: an answer would go where EVerest does not listen
        reply: api.Reply
        if isinstance(request, api.GetFilter):
            reply = get_messages(self.board, request)
        elif isinstance(request, api.ClearId):
            reply = self._store(*clear_message(self.board, request.id))
        else:
            reply = self._store(*set_messages(self.board, request, time.time(), sessions,
                                              token_key, self.languages,
                                              self.settings.max_messages))
        return (reply_to, api.encode(reply)) if reply_to is not None else None

    def _store(self, board: Board, reply: api.Reply) -> api.Reply:
        """Keep `board` (and have it saved) when it changed; the reply to send."""
        if board is not self.board:
            self.board = board
            self._dirty.set()
        return reply

    def _ours(self, reply_to: str, name: str, payload: bytes, now: float) -> bool:
        """Replies go only to this module's reply topics (as EVerest makes them): a request
        must not make the agent publish anywhere else."""
        rest = reply_to.removeprefix(self.reply_prefix)
        if rest != reply_to and rest and not set(rest) & {"/", "+", "#", "\0"}:
            return True
        self.counters.reject(name, f"replyTo is not under {self.reply_prefix}", payload, now)
        return False

    # ---- what each display shows -------------------------------------------------------

    def show(self, panels: Sequence[Panel], router: Router | None, now: float) -> list[Panel]:
        """Drop what expired or ended, then give each display the message it shows now; the
        panels whose state changed."""
        if not self.board.messages and all(p.state.display_message is None for p in panels):
            return []  # nothing kept, nothing shown: every message and tick goes through here
        sessions = self.sessions(panels, router)
        wall = time.time()
        board = tidy(self.board, wall, sessions)
        if board is not self.board:
            self.board = board
            self._dirty.set()
        changed = []
        for panel in panels:
            shown = pick(self.board, display_of(panel.state), wall, now, self.settings.cycle_s)
            if panel.apply(MessageShown(shown), now, publish=False):
                changed.append(panel)
        return changed

    def sessions(self, panels: Sequence[Panel], router: Router | None) -> Sessions:
        """What runs where: every display's sessions, and the session each token started."""
        running = frozenset(s for p in panels for s in display_of(p.state).sessions)
        by_token: dict[int, str] = {}
        if router is not None:
            by_module = {p.evse.module_id: p for p in panels if p.evse is not None}
            for token, module in router.tokens().items():
                session = by_module[module].state.evse_session if module in by_module else None
                if session is not None:
                    by_token[token] = session
        return Sessions(running, by_token)

    def status(self, now: float, connected: bool) -> dict[str, object]:
        """The module's part of the status file."""
        return self.counters.snapshot(now, self.watch, module_id=self.settings.module_id,
                                      link="up" if connected and self.watch.ok else "down",
                                      messages=len(self.board.messages))

    def deadline(self, now: float) -> float | None:
        """When what a display shows changes next without any message (monotonic)."""
        return next_change(self.board, time.time(), now, self.settings.cycle_s)

    # ---- the file ----------------------------------------------------------------------

    async def restore(self) -> None:
        """The messages of the previous run, expired ones dropped by the first show()."""
        if self.path is None:
            return
        try:
            data = await self._lane.call(_read, self.path)
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("display messages: %s: %s", self.path, exc.strerror or exc)
            return
        try:
            self.board = msgspec.json.decode(data, type=Board)
        except (msgspec.DecodeError, ValueError) as exc:
            log.warning("display messages: %s is not usable (%s): starting without", self.path,
                        str(exc)[:100])

    async def keep(self) -> None:
        """Write the messages to the state file after each change (the one writer)."""
        while True:
            await self._dirty.wait()
            await self.save()

    async def save(self) -> None:
        """Write the messages now (also at stop)."""
        self._dirty.clear()
        if self.path is None:
            return
        # A message waiting for a token's session is not saved: its token hash is salted per
        # process, and the token itself is never written anywhere.
        board = msgspec.structs.replace(self.board, messages=tuple(
            m for m in self.board.messages if m.token is None))
        data = msgspec.json.encode(board)
        try:
            await self._lane.call(_write, self.path, data)
        except OSError as exc:
            log.warning("display messages: %s: %s", self.path, exc.strerror or exc)


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _write(path: str, data: bytes) -> None:
    write_atomic(path, data, parents=True)
