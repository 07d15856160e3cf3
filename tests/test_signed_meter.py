"""Eichrecht: a transaction's signed meter values go to the view byte for byte as EVerest
published them, stay with the receipt for its hold (saved with it), and never reach another
session or another EVSE. Raw EVerest JSON in, view bytes out."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from agent.dev.broker import Mosquitto
from agent.everest.evse_manager import SessionEvent, decode_evse
from agent.everest.session_cost import DecodeError, decode
from agent.model.display import DisplayModel
from agent.model.state import DisplayConfig, Event, LinkChanged, State
from agent.model.view import View, encode_view
from agent.process.persist import SnapshotKeeper
from tests.everest_events import session_event
from tests.test_persist import restore

MODEL = DisplayModel(DisplayConfig(), evse=1)
# OCMF as a meter signs it: the agent must not touch a byte (not even the key order or spaces).
OCMF_START = ('OCMF|{"FV":"1.0","GI":"KEBA_KCP30","GS":"17619300","PG":"T1","RD":[{"TM":'
              '"2026-12-03T10:00:00,000+0100 S","TX":"B","RV":1.234,"RI":"1-b:1.8.0","RU":"kWh",'
              '"ST":"G"}]}|{"SA":"ECDSA-secp256r1-SHA256","SD":"3045022100AB"}')
OCMF_END = OCMF_START.replace('"TX":"B","RV":1.234', '"TX":"E","RV":12.5')


def signed(data: str, **extra: str) -> dict[str, str]:
    return {"signed_meter_data": data, "signing_method": "", "encoding_method": "OCMF", **extra}


def everest(doc: Any) -> bytes:
    """JSON as EVerest prints it (4-space indent, sorted keys)."""
    return json.dumps(doc, indent=4, sort_keys=True).encode()


def event(kind: str, sid: str = "S1", **part: Any) -> SessionEvent:
    doc = session_event(kind, sid, "04E1A2B3" if kind == "TransactionStarted" else None)
    name = {"TransactionStarted": "transaction_started",
            "TransactionFinished": "transaction_finished"}.get(kind)
    if name is not None:
        doc[name].update(part)
    msg = decode_evse("session_event", everest(doc))
    assert isinstance(msg, SessionEvent)
    return msg


def cost(sid: str, status: str = "Running") -> Event:
    return decode("session_cost", everest({  # type: ignore[return-value]
        "session_id": sid, "status": status, "currency": {"code": "EUR", "decimals": 2},
        "cost_chunks": [{"cost": {"value": 500}}]}))


def run(*events: Event) -> tuple[State, View]:
    state = MODEL.update(State(), LinkChanged(up=True), 0.0)
    for i, ev in enumerate(events, 1):
        state = MODEL.update(state, ev, float(i))
    return state, MODEL.view(state)


def published(doc: dict[str, str]) -> bytes:
    """The bytes of a signed value as they stand in EVerest's printed session event (an object
    two levels deep: every line after the first indented by 8 more spaces)."""
    return everest(doc).replace(b"\n", b"\n" + b" " * 8)


def test_start_and_end_reach_the_view_byte_for_byte() -> None:
    _, view = run(event("SessionStarted"),
                  event("TransactionStarted", signed_meter_value=signed(OCMF_START)),
                  cost("S1"))
    assert view.signed_meter is not None and view.signed_meter.end is None
    assert json.loads(bytes(view.signed_meter.start or b""))["signed_meter_data"] == OCMF_START
    _, view = run(event("SessionStarted"),
                  event("TransactionStarted", signed_meter_value=signed(OCMF_START)),
                  cost("S1"), event("TransactionFinished",
                                    signed_meter_value=signed(OCMF_END, public_key="3059AB")),
                  cost("S1", "Finished"))
    assert view.screen == "finished" and view.signed_meter is not None
    end = published(signed(OCMF_END, public_key="3059AB"))
    assert bytes(view.signed_meter.end or b"") == end
    assert end in encode_view(view)  # embedded as published, never re-encoded


def test_the_start_value_repeated_at_the_end_also_counts() -> None:
    _, view = run(event("SessionStarted"), event("TransactionStarted"), cost("S1"),
                  event("TransactionFinished", start_signed_meter_value=signed(OCMF_START),
                        signed_meter_value=signed(OCMF_END)))
    assert view.signed_meter is not None
    assert json.loads(bytes(view.signed_meter.start or b""))["signed_meter_data"] == OCMF_START


def test_no_signing_meter_no_signed_values() -> None:
    _, view = run(event("SessionStarted"), event("TransactionStarted"), cost("S1"))
    assert view.signed_meter is None and b'"signed_meter":null' in encode_view(view)


def test_a_new_session_never_shows_the_previous_ones_values() -> None:
    _, view = run(event("SessionStarted"), event("TransactionStarted"), cost("S1"),
                  event("TransactionFinished", signed_meter_value=signed(OCMF_END)),
                  cost("S1", "Finished"), event("SessionFinished"),
                  event("SessionStarted", "S2"), event("TransactionStarted", "S2"), cost("S2"))
    assert view.session_id == "S2" and view.signed_meter is None


@pytest.mark.parametrize("bad", [
    {"signing_method": "", "encoding_method": "OCMF"},  # no signed_meter_data
    {"signed_meter_data": 42, "signing_method": "", "encoding_method": "OCMF"},
    "OCMF|{}",  # not EVerest's object
    [],
])
def test_a_malformed_signed_value_rejects_the_event(bad: Any) -> None:
    doc = session_event("TransactionFinished", "S1")
    doc["transaction_finished"]["signed_meter_value"] = bad
    with pytest.raises(DecodeError):
        decode_evse("session_event", everest(doc))


def test_the_signed_values_are_saved_with_the_receipt(tmp_path: Path) -> None:
    state, before = run(event("SessionStarted"), event("TransactionStarted"), cost("S1"),
                        event("TransactionFinished", start_signed_meter_value=signed(OCMF_START),
                              signed_meter_value=signed(OCMF_END)),
                        cost("S1", "Finished"))

    async def save_and_restore() -> State:
        keeper = SnapshotKeeper(str(tmp_path))
        keeper.request(state, 6.0, 1000.0)
        keeper.close()
        await keeper.run()
        return await restore(SnapshotKeeper(str(tmp_path)), MODEL,
                             MODEL.update(State(), LinkChanged(up=True), 0.0), 7.0, 1001.0)

    after = MODEL.view(asyncio.run(save_and_restore()))
    assert after.screen == "finished" and after.signed_meter == before.signed_meter
    assert before.signed_meter is not None and before.signed_meter.end is not None
    assert bytes(before.signed_meter.end) in encode_view(after)


def test_through_the_process_each_evses_values_stay_its_own_and_survive_a_restart(
        broker: Mosquitto, tmp_path: Path) -> None:
    """The real agent and broker: EVSE 1's signed values (as EVerest prints them, indented) on
    display 1 only, byte for byte, and again after the agent restarted with the receipt."""
    from tests.harness import AgentProcess, Everest, wait_until
    from tests.tasks import cancelled
    from tests.test_evse_integration import SESSIONS, Station, config

    start, end = signed(OCMF_START), signed(OCMF_END, public_key="3059AB")

    def shown(i: int) -> bytes:
        path = tmp_path / f"display{i}.json"
        return path.read_bytes() if path.exists() else b""

    def published(event: dict[str, Any], part: str) -> bytes:
        """The bytes of the event's signed value exactly as they stand in what was published
        (EVerest indents nested objects: the slice of the whole document)."""
        import msgspec

        from tests.test_evse_integration import everest as printed

        whole = msgspec.json.decode(printed(event), type=dict[str, msgspec.Raw])
        inner = msgspec.json.decode(whole[part], type=dict[str, msgspec.Raw])
        return bytes(inner["signed_meter_value"])

    async def scenario() -> None:
        sim = await Everest(broker.port).connect()
        station = Station(sim)
        beats = asyncio.create_task(station.heartbeats())
        agent = await AgentProcess(config(tmp_path, broker.port)).start()
        try:
            await wait_until(lambda: b'"link":"up"' in shown(1) and b'"link":"up"' in shown(2),
                             what="both displays up")
            started = session_event("TransactionStarted", SESSIONS[1], "04E1A2B3")
            started["transaction_started"]["signed_meter_value"] = start
            finished = session_event("TransactionFinished", SESSIONS[1])
            finished["transaction_finished"]["signed_meter_value"] = end
            station.event(1, "SessionStarted")
            station.evse(1, "session_event", started)
            station.event(2, "SessionStarted")
            station.evse(1, "session_event", finished)
            station.event(1, "SessionFinished")
            sim.send("session_cost", {"session_id": SESSIONS[1], "status": "Finished",
                                      "currency": {"code": "EUR", "decimals": 3},
                                      "cost_chunks": [{"cost": {"value": 4500}}]})
            first, last = (published(started, "transaction_started"),
                           published(finished, "transaction_finished"))
            assert b"\n" in last  # indented, as EVerest prints it
            await wait_until(lambda: last in shown(1), what="the end record on 1")
            assert first in shown(1)
            assert b"OCMF" not in shown(2) and b'"signed_meter":null' in shown(2)
            assert await agent.terminate() == 0
            (tmp_path / "display1.json").unlink()
            agent = await AgentProcess(config(tmp_path, broker.port)).start()
            await wait_until(lambda: last in shown(1), what="the receipt restored")
            assert first in shown(1)
            assert b"OCMF" not in shown(2)
        finally:
            await cancelled(beats)
            await agent.kill()
            await sim.close()
    asyncio.run(scenario())
