"""A hypothesis state machine over the display model: sessions, tariffs of every identifier
type, link changes, ticks and late results, with the invariants the display must keep."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from agent.everest.session_cost import DefaultPrice, SessionCost, TariffMessage, decode
from agent.model.display import DisplayConfig, DisplayModel, Event, LinkChanged, State, Tick
from agent.model.view import Screen
from agent.process.inbox import Inbox
from agent.process.panel import Panel
from agent.process.persist import SnapshotKeeper
from agent.process.status import Counters
from agent.process.supervise import ApiWatch
from agent.settings.config import Config

CONFIG = Config()
BASE = CONFIG.everest.base()
SESSIONS = st.sampled_from(["S1", "S2", "S3"])
STATUSES = st.sampled_from(["Running", "Idle", "Finished"])
KINDS = st.sampled_from(["IdToken", "SessionId", "TransactionId", None])
IDENTS = st.sampled_from(["S1", "S2", "S3", "TOKEN", None])


def _expected_screen(state: State) -> Screen:
    """The screen, derived from the state independently of DisplayModel.screen."""
    if state.session is not None and state.ended_at is not None:
        return "finished"
    if not state.link_up:
        return "unavailable"
    if state.tariff is not None:
        return "tariff"
    if state.session is not None:
        return "idle" if state.session.status == "Idle" else "charging"
    return "price"


class DisplayMachine(RuleBasedStateMachine):
    """Random event sequences against the pure model."""

    @initialize(timeout=st.sampled_from([0.0, 300.0]))
    def start(self, timeout: float) -> None:
        self.model = DisplayModel(DisplayConfig(tariff_hold_s=60, finished_hold_s=120,
                                                session_timeout_s=timeout))
        self.state = State()
        self.now = 0.0

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

    @rule(seconds=st.sampled_from([1.0, 59.0, 61.0, 119.0, 121.0, 301.0, 1000.0]))
    def tick(self, seconds: float) -> None:
        self.now += seconds
        self._apply(Tick())

    @rule(topic=st.sampled_from(["session_cost", "tariff_message", "default_price"]),
          garbage=st.sampled_from([b"{", b"null", b'{"session_id": 1}', b"[]", b"\xff",
                                   b'{"session_id":"S1","currency":{},"status":"Done"}',
                                   b'{"messages":[{"content":null}]}']))
    def invalid_payload(self, topic: str, garbage: bytes) -> None:
        # Through the agent's own inbox: the payload is checked, counted and never applied.
        panel = Panel(self.model, [], SnapshotKeeper("", 120.0))
        panel.state = self.state
        counters = Counters(self.now)
        def deliver(target: Panel, msg: SessionCost | TariffMessage | DefaultPrice,
                    now: float) -> None:
            target.apply(msg, now)

        inbox = Inbox(CONFIG, [panel], ApiWatch("session_cost", BASE, 3.0), counters, deliver,
                      lambda *_: None, self.now)
        inbox.routes[BASE + "e2m/" + topic](garbage, self.now)
        assert panel.state is self.state
        assert counters.rejected[topic] == 1

    @invariant()
    def screen_follows_from_state(self) -> None:
        if hasattr(self, "model"):
            assert self.model.screen(self.state) == _expected_screen(self.state)

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
