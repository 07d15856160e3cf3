"""EVerest's display_message API as a pure model: raw JSON of EVerest's requests in, reply bytes
out (as its C++ codec reads them), and the rules of what each display shows (OCPP 2.0.1
MessageInfo: priorities, states, wall-clock windows, session and token binding, turns)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from agent.everest.display_message import (
    ClearReply,
    DisplayMessage,
    GetFilter,
    GetReply,
    RequestError,
    SetReply,
    decode,
    encode,
)
from agent.everest.session_cost import MessageContent
from agent.model.display_messages import (
    Board,
    Display,
    Sessions,
    clear_message,
    get_messages,
    next_change,
    pick,
    set_messages,
    tidy,
)

REPLY = "everest_api/1/display_message/display/m2e/reply/5b1c2d3e-0000-4000-8000-00000000aaaa"
WALL = 1_800_000_000.0  # 2027-01-15T08:00:00Z
S1, S2 = "0f4a5b7c-0000-4000-8000-000000000001", "0f4a5b7c-0000-4000-8000-000000000002"
TOKEN = "04A1B2C3D4E5F6"


def framed(payload: Any = None) -> bytes:
    """A request as AsyncApiRequestReply::create() publishes it (no payload when empty)."""
    doc: dict[str, Any] = {"headers": {"replyTo": REPLY}}
    if payload is not None:
        doc["payload"] = payload
    return json.dumps(doc).encode()


def msg(id: int | None = 1, text: str = "Hello", **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"message": {"content": text, "format": "UTF8", "language": "en"},
                           **extra}
    if id is not None:
        doc["id"] = id
    return doc


def token_key(token: str) -> int:
    return hash(token.casefold())


def put(board: Board, *messages: dict[str, Any], wall: float = WALL,
        sessions: Sessions | None = None, max_messages: int = 32) -> tuple[Board, SetReply]:
    _, request = decode("set_display_message", framed(list(messages)))
    assert isinstance(request, list)
    return set_messages(board, request, wall, sessions or Sessions(), token_key, ("en",),
                        max_messages)


# ---- decoding: EVerest's bytes in -------------------------------------------------------------

@pytest.mark.parametrize(("topic", "raw", "expected"), [
    ("set_display_message", framed([msg(7, "Closed at 22:00", priority="InFront")]),
     [DisplayMessage(MessageContent("Closed at 22:00", "UTF8", "en"), id=7,
                     priority="InFront")]),
    ("set_display_message", framed(), []),  # an empty set: EVerest leaves `payload` out
    ("get_display_message", framed(), GetFilter()),
    ("get_display_message", framed({"id": [1, 2], "state": "Charging"}),
     GetFilter(id=[1, 2], state="Charging")),
    ("clear_display_message", framed({"id": 7}), None),
    # Unknown members are skipped (additionalProperties: true in EVerest's schema).
    ("clear_display_message", framed({"id": 7, "future": {"x": 1}}), None),
])
def test_requests_decode_as_everest_frames_them(topic: str, raw: bytes, expected: Any) -> None:
    reply_to, request = decode(topic, raw)
    assert reply_to == REPLY
    if expected is not None:
        assert request == expected
    else:
        assert request.id == 7  # type: ignore[union-attr]


@pytest.mark.parametrize(("topic", "raw", "answerable"), [
    ("set_display_message", b"{not json", False),
    ("set_display_message", b'{"headers": 3}', False),
    ("set_display_message", framed([{"id": 1, "message": {"content": 3}}]), True),  # not a text
    ("set_display_message", framed([{"id": 1}]), True),  # message missing
    ("set_display_message", framed([msg(2**31)]), True),  # not an int32
    ("set_display_message", framed([msg(identifier_id="x" * 37)]), True),
    ("set_display_message", framed([msg(priority="Urgent")]), True),
    ("set_display_message", framed({"id": 1}), True),  # not an array
    ("clear_display_message", framed(), True),  # clear needs its id
    ("clear_display_message", framed({"id": "7"}), True),
    ("get_display_message", framed({"id": 7}), True),  # ids are an array
])
def test_invalid_requests_are_refused_and_answered_where_possible(
        topic: str, raw: bytes, answerable: bool) -> None:
    with pytest.raises(RequestError) as refused:
        decode(topic, raw)
    assert refused.value.reason
    assert (refused.value.reply_to == REPLY) is answerable


@pytest.mark.parametrize(("reply", "raw"), [
    (SetReply("Accepted"), b'{"status":"Accepted"}'),
    (SetReply("UnknownTransaction", "no EVSE runs it"),
     b'{"status":"UnknownTransaction","status_info":"no EVSE runs it"}'),
    (ClearReply("Unknown"), b'{"status":"Unknown"}'),
    (GetReply(messages=[]), b'{"messages":[]}'),
    (GetReply(messages=[DisplayMessage(MessageContent("Hi", "UTF8"), id=3,
                                       priority="AlwaysFront", state="Idle")]),
     b'{"messages":[{"message":{"content":"Hi","format":"UTF8"},"id":3,'
     b'"priority":"AlwaysFront","state":"Idle"}]}'),
])
def test_replies_carry_exactly_the_members_everests_codec_reads(reply: Any, raw: bytes) -> None:
    assert encode(reply) == raw


# ---- set, get, clear ------------------------------------------------------------------------

@pytest.mark.parametrize(("message", "status"), [
    (msg(id=None), "Rejected"),  # get and clear name messages by id
    (msg(state="Faulted"), "NotSupportedState"),  # EVerest's consumer APIs carry no faults
    (msg(text="https://x.example/" + "a" * 2400) | {"message": {
        "content": "https://x.example/" + "a" * 2400, "format": "URI"}},
     "NotSupportedMessageFormat"),
    (msg(identifier_id=S1, identifier_type="TransactionId"), "UnknownTransaction"),
    (msg(identifier_id=S1), "UnknownTransaction"),  # SessionId by default
    (msg(timestamp_to="tomorrow"), "Rejected"),
    (msg(timestamp_to="2020-01-01T00:00:00Z"), "Rejected"),  # already over
    (msg(text="   "), "Rejected"),
])
def test_a_message_that_cannot_be_shown_is_refused_with_its_reason(
        message: dict[str, Any], status: str) -> None:
    board, reply = put(Board(), message)
    assert reply.status == status and board == Board()
    if status == "UnknownTransaction":
        assert S1 in str(reply.status_info)


def test_same_id_replaces_and_a_new_always_front_replaces_every_other() -> None:
    board, _ = put(Board(), msg(1, "a"), msg(2, "b", priority="AlwaysFront"))
    board, reply = put(board, msg(1, "a2"), msg(3, "c", priority="AlwaysFront"))
    assert reply == SetReply("Accepted")
    assert [(m.id, m.text) for m in board.messages] == [(1, "a2"), (3, "c")]
    full, reply = put(board, msg(4), max_messages=2)
    assert reply.status == "Rejected" and full is board


def test_get_filters_and_clear_removes() -> None:
    board, _ = put(Board(), msg(1, state="Charging"), msg(2, priority="InFront"), msg(3))
    assert [m.id for m in get_messages(board, GetFilter()).messages or []] == [1, 2, 3]
    assert [m.id for m in get_messages(board, GetFilter(id=[3, 1])).messages or []] == [1, 3]
    assert [m.id for m in get_messages(board, GetFilter(state="Charging")).messages
            or []] == [1]
    assert [m.id for m in get_messages(board, GetFilter(priority="InFront")).messages
            or []] == [2]
    board, reply = clear_message(board, 2)
    assert reply == ClearReply("Accepted") and [m.id for m in board.messages] == [1, 3]
    assert clear_message(board, 2) == (board, ClearReply("Unknown"))


def test_a_token_is_never_kept_the_message_waits_for_its_session() -> None:
    board, reply = put(Board(), msg(5, "Welcome back", identifier_id=TOKEN,
                                    identifier_type="IdToken", priority="InFront"))
    assert reply.status == "Accepted"
    assert TOKEN not in repr(board)
    here = Display("Charging", frozenset({S1}))
    assert pick(board, here, WALL, 0.0, 8.0) is None  # no session of that token yet
    started = Sessions(frozenset({S1}), {token_key(TOKEN): S1})
    board = tidy(board, WALL, started)
    assert pick(board, here, WALL, 0.0, 8.0) is not None
    assert pick(board, Display("Charging", frozenset({S2})), WALL, 0.0, 8.0) is None
    # The session ends: the message goes with it.
    assert tidy(board, WALL, Sessions(frozenset())).messages == ()


# ---- what a display shows -----------------------------------------------------------------

CHARGING_1 = Display("Charging", frozenset({S1}))


def shown_ids(board: Board, display: Display, turns: int, cycle: float = 8.0,
              wall: float = WALL) -> list[int | None]:
    out = []
    for turn in range(turns):
        shown = pick(board, display, wall, turn * cycle + 0.5, cycle)
        out.append(shown.id if shown else None)
    return out


def test_normal_cycle_messages_take_turns_with_the_agents_own_screen() -> None:
    board, _ = put(Board(), msg(1), msg(2))
    assert shown_ids(board, CHARGING_1, 6) == [None, 1, 2, None, 1, 2]
    assert next_change(board, WALL, 3.0, 8.0) == 8.0


def test_in_front_messages_take_turns_over_the_screen_and_always_front_wins() -> None:
    board, _ = put(Board(), msg(1), msg(2, priority="InFront"), msg(3, priority="InFront"))
    assert shown_ids(board, CHARGING_1, 4) == [2, 3, 2, 3]
    board, _ = put(board, msg(4, priority="AlwaysFront"))
    assert shown_ids(board, CHARGING_1, 3) == [4, 4, 4]


def test_state_window_and_session_decide_where_and_when() -> None:
    running = Sessions(frozenset({S1, S2}))
    board, reply = put(Board(), msg(1, state="Idle"),
                       msg(2, priority="AlwaysFront", identifier_id=S2,
                           identifier_type="TransactionId"),
                       msg(3, priority="InFront", timestamp_from="2027-01-15T09:00:00Z",
                           timestamp_to="2027-01-15T10:00:00+00:00"),
                       sessions=running)
    assert reply.status == "Accepted"
    idle = Display("Idle")
    assert shown_ids(board, idle, 2) == [None, 1]
    assert shown_ids(board, CHARGING_1, 2) == [None, None]  # not Idle, not S2, not yet
    assert shown_ids(board, Display("Charging", frozenset({S2})), 2) == [2, 2]
    assert shown_ids(board, CHARGING_1, 2, wall=WALL + 3600 + 1) == [3, 3]
    # The wall clock decides the window: its edge is the next change (checked at least
    # every minute, for clock steps).
    assert next_change(board, WALL, 100.0, 8.0) == 104.0
    assert next_change(board, WALL + 3600 - 30, 100.0, 3600.0) == 130.0
    later = tidy(board, WALL + 7200, running)
    assert [m.id for m in later.messages] == [1, 2]  # 3 expired


# ---- the rules, against a reference kept by the test ----------------------------------------

IDS = st.integers(1, 5)
PRIORITIES = st.sampled_from(["AlwaysFront", "InFront", "NormalCycle"])
STATES = st.sampled_from([None, "Charging", "Idle", "Suspending"])
BINDINGS = st.sampled_from([None, S1, S2, "gone"])


class DisplayRules(RuleBasedStateMachine):
    """Random sets, clears, sessions and clocks on two displays; each shows only what the
    spec allows it to, and the board holds exactly what was accepted and not removed."""

    def __init__(self) -> None:
        super().__init__()
        self.board = Board()
        self.wall = WALL
        self.mono = 0.0
        self.running = {1: S1, 2: S2}
        self.situation = {1: "Charging", 2: "Idle"}
        self.expected: dict[int, dict[str, Any]] = {}  # id -> what the test set

    def sessions(self) -> Sessions:
        return Sessions(frozenset(s for s in self.running.values() if s))

    def display(self, i: int) -> Display:
        session = self.running[i]
        return Display(self.situation[i], frozenset({session}) if session else frozenset())  # type: ignore[arg-type]

    @rule(id=IDS, priority=PRIORITIES, state=STATES, binding=BINDINGS,
          window=st.sampled_from([None, (-60, 60), (30, 90)]))
    def set_one(self, id: int, priority: str, state: str | None,
                binding: str | None, window: tuple[int, int] | None) -> None:
        extra: dict[str, Any] = {"priority": priority}
        if state:
            extra["state"] = state
        if binding:
            extra["identifier_id"] = binding
        if window:
            extra["timestamp_from"] = _stamp(self.wall + window[0])
            extra["timestamp_to"] = _stamp(self.wall + window[1])
        self.board, reply = put(self.board, msg(id, f"m{id}", **extra), wall=self.wall,
                                sessions=self.sessions())
        runs = binding is None or binding in self.running.values()
        assert (reply.status == "Accepted") == runs, reply
        if runs:
            if priority == "AlwaysFront":
                self.expected = {k: v for k, v in self.expected.items()
                                 if v["priority"] != "AlwaysFront"}
            self.expected[id] = {"priority": priority, "state": state, "session": binding,
                                 "window": None if window is None else (
                                     self.wall + window[0], self.wall + window[1])}

    @rule(id=IDS)
    def clear(self, id: int) -> None:
        self.board, reply = clear_message(self.board, id)
        assert (reply.status == "Accepted") == (id in self.expected)
        self.expected.pop(id, None)

    @rule(seconds=st.sampled_from([1.0, 7.0, 45.0]))
    def time_passes(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds
        self.tidy()

    @rule(i=st.sampled_from([1, 2]), situation=st.sampled_from(["Charging", "Idle",
                                                               "Suspending"]))
    def situation_changes(self, i: int, situation: str) -> None:
        self.situation[i] = situation

    @rule(i=st.sampled_from([1, 2]))
    def session_ends(self, i: int) -> None:
        self.running[i] = None  # type: ignore[assignment]
        self.tidy()

    def tidy(self) -> None:
        self.board = tidy(self.board, self.wall, self.sessions())
        live = set(self.running.values())
        self.expected = {k: v for k, v in self.expected.items()
                         if (v["window"] is None or v["window"][1] > self.wall)
                         and (v["session"] is None or v["session"] in live)}

    @invariant()
    def the_board_holds_what_was_accepted_and_not_removed(self) -> None:
        assert sorted(m.id for m in self.board.messages) == sorted(self.expected)
        assert len({m.id for m in self.board.messages}) == len(self.board.messages)
        assert sum(m.priority == "AlwaysFront" for m in self.board.messages) <= 1

    @invariant()
    def each_display_shows_only_what_it_may(self) -> None:
        for i in (1, 2):
            shown = pick(self.board, self.display(i), self.wall, self.mono, 8.0)
            allowed = {k for k, v in self.expected.items() if self.may_show(i, v)}
            if shown is None:
                # Only NormalCycle messages leave turns to the agent's own screen.
                assert all(self.expected[k]["priority"] == "NormalCycle" for k in allowed)
                continue
            assert shown.id in allowed
            fronts = [k for k in allowed if self.expected[k]["priority"] == "AlwaysFront"]
            if fronts:
                assert shown.id == fronts[0]
            elif any(self.expected[k]["priority"] == "InFront" for k in allowed):
                assert self.expected[shown.id]["priority"] == "InFront"

    def may_show(self, i: int, v: dict[str, Any]) -> bool:
        window = v["window"]
        return ((v["state"] is None or v["state"] == self.situation[i])
                and (v["session"] is None or v["session"] == self.running[i])
                and (window is None or window[0] <= self.wall < window[1]))


def _stamp(unix: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(unix, UTC).isoformat().replace("+00:00", "Z")


TestDisplayRules = DisplayRules.TestCase
TestDisplayRules.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
