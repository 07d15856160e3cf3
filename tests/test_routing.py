"""Router: scripts of raw session events, session costs and tariffs in, target EVSEs out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent.everest.evse_manager import SessionEvent, SessionInfo, decode_evse
from agent.everest.session_cost import SessionCost, TariffMessage, decode
from tests.everest_events import session_event
from tests.routed import RoutedStation

M1, M2, M3 = "evse_manager_consumer_1", "evse_manager_consumer_2", "evse_manager_consumer_3"


def event(name: str, sid: str, token: str | None = None) -> SessionEvent:
    """A session event as EVerest sends it; `token` in its session_/transaction_started."""
    msg = decode_evse("session_event", json.dumps(session_event(name, sid, token)).encode())
    assert isinstance(msg, SessionEvent)
    return msg


def cost(sid: str, status: str = "Running", value: int = 100) -> SessionCost:
    raw = json.dumps({"session_id": sid, "currency": {"decimals": 3}, "status": status,
                      "cost_chunks": [{"cost": {"value": value}}]}).encode()
    msg = decode("session_cost", raw)
    assert isinstance(msg, SessionCost)
    return msg


def tariff(kind: str | None = None, ident: str | None = None,
           ocpp_tx: str | None = None) -> TariffMessage:
    doc: dict[str, Any] = {"messages": [{"content": "0.40 EUR/kWh"}]}
    for key, value in (("identifier_type", kind), ("identifier_id", ident),
                       ("ocpp_transaction_id", ocpp_tx)):
        if value is not None:
            doc[key] = value
    msg = decode("tariff_message", json.dumps(doc).encode())
    assert isinstance(msg, TariffMessage)
    return msg


# A script step: ("event", module, SessionEvent, [labels of released messages])
#             or ("send", label, message, expected target modules)
Step = tuple[str, str, Any, Any]
SCRIPTS: dict[str, tuple[list[str], list[Step]]] = {
    "one EVSE: cost before any event goes to it": ([M1], [
        ("send", "c1", cost("S1"), (M1,)),
        ("event", M1, event("SessionStarted", "S1"), []),
        ("send", "c2", cost("S1"), (M1,)),
    ]),
    "several EVSEs: events first, costs follow their session": ([M1, M2], [
        ("event", M1, event("SessionStarted", "S1"), []),
        ("event", M2, event("SessionStarted", "S2"), []),
        ("send", "c1", cost("S2"), (M2,)),
        ("send", "c2", cost("S1"), (M1,)),
        ("send", "c3", cost("S2"), (M2,)),
    ]),
    "several EVSEs: a cost before its event is held, then released in order": ([M1, M2], [
        ("send", "c1", cost("S1", value=1), ()),
        ("send", "c2", cost("S2"), ()),
        ("send", "c3", cost("S1", value=2), ()),
        ("event", M2, event("SessionStarted", "S1"), ["c1", "c3"]),
        ("event", M2, event("ChargingStarted", "S1"), []),  # released only once
        ("send", "c4", cost("S1"), (M2,)),
        ("event", M1, event("TransactionStarted", "S2", "AB"), ["c2"]),
    ]),
    "the final cost after SessionFinished still finds its EVSE": ([M1, M2], [
        ("event", M2, event("SessionStarted", "S1"), []),
        ("event", M2, event("TransactionFinished", "S1"), []),
        ("event", M2, event("SessionFinished", "S1"), []),
        ("send", "c1", cost("S1", "Finished"), (M2,)),
    ]),
    "an event first seen mid-session (agent restart) names the session": ([M1, M2], [
        ("send", "c1", cost("S7"), ()),
        ("event", M1, event("ChargingPausedEV", "S7"), ["c1"]),
    ]),
    "events outside sessions name nothing": ([M1, M2], [
        ("send", "c1", cost("S1"), ()),
        ("event", M1, event("Enabled", "S1"), []),
        ("event", M1, event("ReservationStart", "S1"), []),
        ("event", M1, event("Deauthorized", "S1"), []),
        ("event", M2, event("SessionStarted", ""), []),
        ("send", "c2", cost("S1"), ()),
    ]),
    "IdToken tariff: to the EVSE whose session carries the token": ([M1, M2, M3], [
        ("event", M1, event("SessionStarted", "S1", "04A1B2C3"), []),
        ("event", M3, event("SessionStarted", "S3"), []),
        ("send", "t1", tariff("IdToken", "04a1b2c3"), (M1,)),  # case-insensitive
        # unknown token: the free EVSE and the one whose car waits for authorization
        ("send", "t2", tariff("IdToken", "FFFF"), (M2, M3)),
        ("send", "t3", tariff(), (M2, M3)),  # OCPP 1.6 fallback text: like an IdToken tariff
        ("event", M3, event("TransactionStarted", "S3", "FFFF"), []),
        ("send", "t4", tariff(None, "ffff"), (M3,)),
        ("event", M1, event("SessionFinished", "S1"), []),
        ("send", "t5", tariff("IdToken", "04A1B2C3"), (M1, M2)),  # token gone with its session
    ]),
    "IdToken tariff when every EVSE is busy and none has the token": ([M1, M2], [
        ("event", M1, event("SessionStarted", "S1"), []),
        ("event", M2, event("TransactionStarted", "S2", "BB"), []),
        ("send", "t1", tariff("IdToken", "AA"), (M1,)),  # M1's car waits for authorization
        ("event", M1, event("TransactionStarted", "S1", "CC"), []),
        ("send", "t2", tariff("IdToken", "AA"), ()),
    ]),
    "plug first, then swipe: the tariff reaches the waiting connector": ([M1, M2], [
        ("event", M2, event("TransactionStarted", "S2", "BB"), []),
        ("event", M1, event("SessionStarted", "S1"), []),  # plugged in, no token yet
        ("send", "t1", tariff("IdToken", "04A1"), (M1,)),
        ("event", M1, event("TransactionStarted", "S1", "04A1"), []),
        ("send", "t2", tariff("IdToken", "04a1"), (M1,)),
    ]),
    "a new session on an EVSE drops the old session's token": ([M1, M2], [
        ("event", M1, event("SessionStarted", "S1", "AA"), []),
        ("event", M1, event("SessionStarted", "S2"), []),  # SessionFinished of S1 was missed
        ("send", "t1", tariff("IdToken", "AA"), (M1, M2)),  # M1's new session waits
    ]),
    "session tariffs follow the session, held until named": ([M1, M2], [
        ("event", M2, event("SessionStarted", "S1"), []),
        ("send", "t1", tariff("SessionId", "S1", "4711"), (M2,)),
        ("send", "t2", tariff("TransactionId", "S1"), (M2,)),
        ("send", "t3", tariff("TransactionId", "4711", "S1"), (M2,)),  # via ocpp_transaction_id
        ("send", "t4", tariff("TransactionId", "S9"), ()),
        ("send", "c1", cost("S9"), ()),
        ("event", M1, event("SessionStarted", "S9"), ["t4", "c1"]),
    ]),
    "one EVSE: every tariff goes to it": ([M1], [
        ("event", M1, event("SessionStarted", "S1", "AA"), []),
        ("send", "t1", tariff("IdToken", "BB"), (M1,)),
        ("send", "t2", tariff("TransactionId", "S5"), (M1,)),
    ]),
}


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_script(name: str) -> None:
    modules, steps = SCRIPTS[name]
    router = RoutedStation(modules)
    sent: dict[str, SessionCost | TariffMessage] = {}
    for i, (kind, key, msg, expected) in enumerate(steps):
        if kind == "event":
            released = router.event(key, msg)
            assert released == [sent[label] for label in expected], f"step {i}"
            continue
        sent[key] = msg
        got = router.session_cost(msg) if isinstance(msg, SessionCost) else router.tariff(msg)
        assert got == expected, f"step {i} ({key})"


def test_released_messages_are_the_same_objects_in_arrival_order() -> None:
    router = RoutedStation([M1, M2])
    first, second = cost("S1", value=1), cost("S1", value=2)
    router.session_cost(first)
    router.session_cost(second)
    released = router.event(M1, event("SessionStarted", "S1"))
    assert len(released) == 2
    assert released[0] is first
    assert released[1] is second


def test_running_sessions_are_tracked_from_start_to_finish() -> None:
    router = RoutedStation([M1, M2])
    assert router.tariff(tariff("IdToken", "ZZ")) == (M1, M2)  # both free
    router.event(M1, event("SessionStarted", "S1"))
    router.event(M1, event("TransactionStarted", "S1", "AA"))
    assert router.tariff(tariff("IdToken", "ZZ")) == (M2,)  # M1 runs S1
    assert router.session_cost(cost("S1")) == (M1,)
    router.event(M1, event("SessionFinished", "S1"))
    assert router.tariff(tariff("IdToken", "ZZ")) == (M1, M2)
    assert router.session_cost(cost("S1", "Finished")) == (M1,)  # its final cost still finds it


def test_held_messages_per_session_are_bounded_keeping_the_newest() -> None:
    router = RoutedStation([M1, M2], held_per_session=2)
    costs = [cost("S1", value=v) for v in range(5)]
    for c in costs:
        assert router.session_cost(c) == ()
    assert router.event(M1, event("SessionStarted", "S1")) == costs[-2:]


def test_unassigned_sessions_are_reported_once() -> None:
    router = RoutedStation([M1, M2], memory=2)
    router.session_cost(cost("S1"), now=0.0)
    router.session_cost(cost("S2"), now=1.0)
    assert router.take_unassigned(now=1.0) == []
    router.session_cost(cost("S3"), now=2.0)  # S1 is evicted from the holding area
    router.session_cost(cost("S2", "Finished"), now=3.0)  # a final cost nobody named (yet)
    assert router.take_unassigned(now=3.0) == ["S1"]
    assert router.take_unassigned(now=60.9) == []
    assert router.take_unassigned(now=61.0) == ["S2"]  # still unnamed after a minute
    assert router.take_unassigned(now=200.0) == ["S3"]
    assert router.take_unassigned(now=300.0) == []


def test_a_cost_just_before_its_event_is_not_reported() -> None:
    router = RoutedStation([M1, M2])
    router.session_cost(cost("S1", "Finished"), now=10.0)
    router.event(M1, event("SessionStarted", "S1"))
    assert router.take_unassigned(now=1000.0) == []


def test_session_memory_is_bounded() -> None:
    router = RoutedStation([M1, M2], memory=3)
    for n in range(5):
        router.event(M1, event("SessionStarted", f"S{n}"))
    assert router.session_cost(cost("S4")) == (M1,)
    assert router.session_cost(cost("S1")) == ()  # forgotten: held like an unnamed one
    assert router.session_cost(cost("S0")) == ()


def test_recently_used_sessions_stay_remembered() -> None:
    router = RoutedStation([M1, M2], memory=2)
    router.event(M1, event("SessionStarted", "S0"))
    router.event(M2, event("SessionStarted", "S1"))
    assert router.session_cost(cost("S0")) == (M1,)  # S0 becomes the most recent
    router.event(M2, event("SessionStarted", "S2"))
    assert router.session_cost(cost("S0")) == (M1,)
    assert router.session_cost(cost("S1")) == ()


@pytest.mark.parametrize("modules", [[], [M1, M1]])
def test_module_ids_must_be_distinct_and_present(modules: list[str]) -> None:
    with pytest.raises(ValueError, match="module_ids"):
        RoutedStation(modules)


def test_events_of_unknown_modules_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown EVSE"):
        RoutedStation([M1]).event(M2, event("SessionStarted", "S1"))


def test_a_resumed_session_routes_at_once() -> None:
    router = RoutedStation([M1, M2])
    router.restored(M2, "S1")  # the agent restarted while S1 was running on M2
    assert router.session_cost(cost("S1")) == (M2,)
    assert router.tariff(tariff("IdToken", "AA")) == (M1,)  # M2 is busy with S1


def info(state: str) -> SessionInfo:
    msg = decode_evse("session_info", json.dumps({
        "state": state, "charged_energy_wh": 10, "discharged_energy_wh": 0,
        "latest_total_w": 7400, "session_duration_s": 60, "timestamp": "t"}).encode())
    assert isinstance(msg, SessionInfo)
    return msg


def test_a_session_whose_start_was_missed_gets_its_costs() -> None:
    """The agent restarted without state: only session_info says M2 charges."""
    router = RoutedStation([M1, M2])
    router.info(M1, info("Unplugged"))
    router.info(M2, info("Charging"))
    assert router.session_cost(cost("S9"), now=5.0) == (M2,)
    assert router.take_unassigned(now=500.0) == []


def test_costs_of_a_session_two_evses_could_run_are_held_and_reported_on_the_clock() -> None:
    router = RoutedStation([M1, M2])
    router.info(M1, info("Charging"))
    router.info(M2, info("ChargingPausedEV"))
    assert router.session_cost(cost("S9"), now=5.0) == ()
    assert router.next_report_at() == 65.0  # the runtime's clock wakes up for it
    assert router.take_unassigned(now=65.0) == ["S9"]
    newest = cost("S9", value=7)
    assert router.session_cost(newest, now=66.0) == ()
    assert router.event(M1, event("ChargingStarted", "S9"))[-1] is newest  # named at last


def test_a_later_event_corrects_a_wrong_guess() -> None:
    router = RoutedStation([M1, M2])
    router.info(M1, info("Charging"))  # M2's session_info was lost
    newest = cost("S9", value=9)
    assert router.session_cost(cost("S9"), now=1.0) == (M1,)
    assert router.session_cost(newest, now=2.0) == (M1,)
    assert router.event(M2, event("ChargingStarted", "S9")) == [newest]  # for M2 now
    assert router.take_corrections() == [(M1, "S9")]  # M1 showed what is not its own
    assert router.session_cost(cost("S9"), now=3.0) == (M2,)
    assert router.take_corrections() == []


def test_an_event_naming_its_own_session_undoes_a_guess_for_another() -> None:
    router = RoutedStation([M1, M2])
    router.info(M1, info("Charging"))
    assert router.session_cost(cost("S9")) == (M1,)
    router.event(M1, event("ChargingStarted", "S1"))  # M1 runs S1: S9 was never M1's
    assert router.take_corrections() == [(M1, "S9")]
    assert router.session_cost(cost("S9")) == ()


def test_unplugged_ends_a_session_whose_finish_was_missed() -> None:
    router = RoutedStation([M1, M2])
    router.event(M1, event("TransactionStarted", "S1", "AA"))
    assert router.tariff(tariff("IdToken", "ZZ")) == (M2,)
    router.info(M1, info("Unplugged"))  # SessionFinished never arrived
    assert router.tariff(tariff("IdToken", "ZZ")) == (M1, M2)


def test_a_session_tariff_before_the_sessions_events_is_not_reported_at_once() -> None:
    """Issue 16 bug 9: it was reported the moment it arrived, 0.5 s before its events."""
    router = RoutedStation([M1, M2])
    assert router.tariff(tariff("TransactionId", "J1"), now=100.0) == ()
    assert router.take_unassigned(now=100.5) == []
    assert router.event(M1, event("SessionStarted", "J1")) != []
    assert router.take_unassigned(now=1000.0) == []


def test_the_final_cost_of_a_session_no_event_named_finds_the_evse_it_ended_on() -> None:
    router = RoutedStation([M1, M2])
    router.event(M2, event("SessionStarted", "S2"))  # M2 runs a named session
    router.info(M1, info("Charging"))  # M1's session: all its events were lost
    router.info(M1, info("Unplugged"))
    assert router.session_cost(cost("S9")) == ()  # a Running cost: no EVSE has it on now
    assert router.session_cost(cost("S9", "Finished")) == (M1,)  # the final one: M1's


def test_two_unnamed_sessions_are_told_apart_as_their_evses_report_one_by_one() -> None:
    """After kill -9 without a saved state: each EVSE reports, then its session's cost comes."""
    router = RoutedStation([M1, M2])
    router.info(M2, info("Charging"))
    assert router.session_cost(cost("S2")) == (M2,)
    router.info(M1, info("Charging"))
    assert router.session_cost(cost("S1")) == (M1,)  # M2 is taken by S2's guess
    assert router.session_cost(cost("S2")) == (M2,)


def test_a_session_tariff_is_never_guessed_onto_an_unnamed_session() -> None:
    router = RoutedStation([M1, M2])
    router.info(M1, info("Charging"))
    assert router.tariff(tariff("SessionId", "S0")) == ()  # held until an event names S0
    router.info(M2, info("Charging"))
    assert router.session_cost(cost("S1")) == ()  # two unnamed sessions: ambiguous, held


def test_the_evses_display_state_owns_its_running_session() -> None:
    """One owner: the router asks each EVSE's display state which session runs there."""
    router = RoutedStation([M1, M2])
    router.event(M1, event("SessionStarted", "S1"))
    assert router.running(M1) == "S1" and router.running(M2) is None
    assert router.tariff(tariff("IdToken", "ZZ")) == (M1, M2)  # M1's car waits for a driver
    router.event(M1, event("TransactionStarted", "S1", "AA"))
    assert router.tariff(tariff("IdToken", "ZZ")) == (M2,)
    router.info(M1, info("Unplugged"))  # its SessionFinished was missed
    assert router.running(M1) is None
    assert router.tariff(tariff("IdToken", "ZZ")) == (M1, M2)


def test_a_late_session_finished_does_not_end_an_unnamed_session() -> None:
    """S1 ended unseen on M1, S3 charges there unnamed; S1's SessionFinished comes late."""
    router = RoutedStation([M1, M2])
    router.info(M1, info("Charging"))
    router.info(M1, info("Unplugged"))
    router.info(M1, info("Charging"))
    router.info(M2, info("Charging"))
    router.event(M1, event("SessionFinished", "S1"))
    assert router.unnamed(M1)  # session_info, not the late event, says a session is on
    assert router.session_cost(cost("S3")) == ()  # M1 or M2: ambiguous, held


def test_a_guess_for_an_ended_session_does_not_block_the_next_one() -> None:
    router = RoutedStation([M1, M2])
    router.info(M2, info("Charging"))
    router.info(M2, info("Unplugged"))
    assert router.session_cost(cost("S1", "Finished")) == (M2,)  # its receipt: a guess
    router.info(M1, info("Charging"))
    router.info(M2, info("Charging"))  # a new unnamed session on M2
    assert router.session_cost(cost("S3")) == ()  # M1 or M2: held, never M1 by elimination
