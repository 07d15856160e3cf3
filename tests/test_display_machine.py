"""A hypothesis state machine over the display model: sessions, tariffs of every identifier
type, link changes, ticks and late results, with the invariants the display must keep."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from agent.core.station import Station
from agent.everest.session_cost import SessionCost, TariffMessage, decode
from agent.model.display import DisplayModel
from agent.model.state import DisplayConfig, Event, LinkChanged, State, Tick
from agent.model.view import Screen
from agent.settings.config import Config

CONFIG = Config()
BASE = CONFIG.everest.base()
SESSIONS = st.sampled_from(["S1", "S2", "S3"])
STATUSES = st.sampled_from(["Running", "Idle", "Finished"])
KINDS = st.sampled_from(["IdToken", "SessionId", "TransactionId", None])
IDENTS = st.sampled_from(["S1", "S2", "S3", "TOKEN", None])


TARIFF_HOLD_S = 60.0
FINISHED_HOLD_S = 120.0


class Expected:
    """What the driver must see, kept from the events alone by the README's rules (Screens):
    an authorization tariff shows for tariff_hold_s over anything; a receipt (a Finished cost,
    or the end by session_timeout_s with final false) holds finished_hold_s from its end; the
    link down shows unavailable, except over a receipt; Running shows charging, Idle idle."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.link_up = False
        self.tariff_until: float | None = None
        self.session: str | None = None
        self.status = ""
        self.ended_at: float | None = None
        self.final = False
        self.seen = 0.0

    @property
    def running(self) -> bool:
        return self.session is not None and self.ended_at is None

    def session_cost(self, sid: str, status: str, now: float) -> bool:
        """Apply one cost; False when it is late news that changes nothing shown."""
        same = sid == self.session
        if status == "Finished" and not same and self.running:
            return False  # another session's final cost while one runs
        if same and self.final and status != "Finished":
            return False  # a receipt is final
        if not (same and self.running):
            self.tariff_until = None  # a driver's tariff gives way to their session's cost
        if status == "Finished":
            self.ended_at = self.ended_at if same and self.final else now
        else:
            self.ended_at = None
        self.session, self.status, self.final, self.seen = sid, status, status == "Finished", now
        return True

    def tariff(self, kind: str | None, ident: str | None, now: float) -> None:
        if kind in ("SessionId", "TransactionId"):
            if self.running and ident == self.session:
                self.seen = now  # the backend still talks about the running session
            return
        self.tariff_until = now + TARIFF_HOLD_S

    def tick(self, now: float) -> None:
        if self.tariff_until is not None and now >= self.tariff_until:
            self.tariff_until = None
        if self.timeout_s > 0 and self.running and now >= self.seen + self.timeout_s:
            self.ended_at, self.final = self.seen + self.timeout_s, False
        if self.ended_at is not None and now >= self.ended_at + FINISHED_HOLD_S:
            self.session, self.ended_at, self.final = None, None, False

    def screen(self) -> Screen:
        if self.tariff_until is not None and self.link_up:
            return "tariff"
        if self.session is not None and self.ended_at is not None:
            return "finished"
        if not self.link_up:
            return "unavailable"
        if self.session is not None:
            return "idle" if self.status == "Idle" else "charging"
        return "price"


class DisplayMachine(RuleBasedStateMachine):
    """Random event sequences against the pure model."""

    @initialize(timeout=st.sampled_from([0.0, 300.0]))
    def start(self, timeout: float) -> None:
        self.model = DisplayModel(DisplayConfig(tariff_hold_s=60, finished_hold_s=120,
                                                session_timeout_s=timeout))
        self.state = State()
        self.now = 0.0
        self.expected = Expected(timeout)

    def _apply(self, event: Event) -> State:
        before = self.state
        self.state = self.model.update(self.state, event, self.now)
        return before

    @rule(session=SESSIONS, status=STATUSES, value=st.integers(0, 10**6))
    def session_cost(self, session: str, status: str, value: int) -> None:
        msg = decode("session_cost", json.dumps({
            "session_id": session, "currency": {"decimals": 2}, "status": status,
            "cost_chunks": [{"cost": {"value": value}}, None]}, indent=4).encode())
        assert isinstance(msg, SessionCost)
        before = self._apply(msg)
        self.expected.session_cost(session, status, self.now)
        other = before.session is not None and before.session.session_id != session
        if before.running and other and status == "Finished":
            # Another session's Finished never replaces the running one.
            assert self.state.session is before.session
            assert self.state.late_results == before.late_results + 1

    @rule(kind=KINDS, ident=IDENTS, text=st.text(min_size=1, max_size=5))
    def tariff(self, kind: str | None, ident: str | None, text: str) -> None:
        doc: dict[str, Any] = {"messages": [{"content": text}]}
        if kind is not None:
            doc["identifier_type"] = kind
        if ident is not None:
            doc["identifier_id"] = ident
        msg = decode("tariff_message", json.dumps(doc).encode())
        assert isinstance(msg, TariffMessage)
        before = self._apply(msg)
        self.expected.tariff(kind, ident, self.now)
        if before.running or before.ended_at is not None:
            # No tariff ends or replaces a running session or a receipt, nor changes its total.
            assert self.state.session is before.session
            assert self.state.ended_at == before.ended_at
        if before.running:
            # No tariff ends or replaces a running session, nor changes its total.
            assert self.state.session is before.session
            assert self.state.ended_at is None
            named = kind in ("SessionId", "TransactionId")
            if named and before.session is not None and ident != before.session.session_id:
                assert self.state == before  # another session's text: nothing changes

    @rule(up=st.booleans())
    def link(self, up: bool) -> None:
        self._apply(LinkChanged(up=up))
        self.expected.link_up = up

    @rule(seconds=st.sampled_from([1.0, 59.0, 61.0, 119.0, 121.0, 301.0, 1000.0]))
    def tick(self, seconds: float) -> None:
        self.now += seconds
        self._apply(Tick())
        self.expected.tick(self.now)

    @rule(topic=st.sampled_from(["session_cost", "tariff_message", "default_price"]),
          garbage=st.sampled_from([b"{", b"null", b'{"session_id": 1}', b"[]", b"\xff",
                                   b'{"session_id":"S1","currency":{},"status":"Done"}',
                                   b'{"messages":[{"content":null}]}']))
    def invalid_payload(self, topic: str, garbage: bytes) -> None:
        # Through the station core: the payload is checked, counted and never applied.
        station = Station(CONFIG, self.now)
        display = station.display(None)
        display.state = self.state
        assert not station.receive(BASE + "e2m/" + topic, garbage, self.now, 0.0)  # no effect
        assert display.state is self.state
        assert station.counters.rejected[topic] == 1

    @invariant()
    def the_screen_is_what_the_rules_say(self) -> None:
        if hasattr(self, "model"):
            view = self.model.view(self.state)
            assert view.screen == self.expected.screen()
            if view.screen in ("charging", "idle", "finished", "unavailable"):
                assert view.session_id == self.expected.session

    @invariant()
    def receipt_is_never_stale(self) -> None:
        if hasattr(self, "model"):
            view = self.model.view(self.state)
            if view.screen == "finished":
                assert view.stale is False and view.final is not None
            else:
                assert view.final is None

    @invariant()
    def deadline_is_in_the_future_or_due(self) -> None:
        if hasattr(self, "model"):
            deadline = self.model.next_deadline(self.state)
            if deadline is not None and deadline <= self.now:
                # A due deadline is consumed by the next Tick: nothing stays due after it.
                ticked = self.model.update(self.state, Tick(), self.now)
                later = self.model.next_deadline(ticked)
                assert later is None or later > self.now


DisplayMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestDisplayMachine = DisplayMachine.TestCase
