"""A restart is a new station core built from what the old one saved (issue 26), in both
modes: the snapshots and the display messages' file, as the shell writes and reads them."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from agent.core.effects import Effects
from agent.core.messages import encode_board
from agent.core.snapshot import Snapshot, decode_snapshot, encode_snapshot, snapshot_of
from agent.core.station import Station
from agent.settings.config import Config, parse
from tests.everest_events import session_event

BOOT = "boot-1"
WAIT_S = 60.0  # [display] final_cost_wait_s
COMMON = '[display_messages]\nmodule_id = "display"\n[state]\ndir = ""\n[status]\npath = ""\n'
NO_EVSE = parse(f"[display]\nfinal_cost_wait_s = {WAIT_S}\n" + COMMON)
TWO_EVSES = parse('[[evse]]\nid = 1\nmodule_id = "evse_a"\n'
                  '[[evse]]\nid = 2\nmodule_id = "evse_b"\n' + COMMON)


def cost(session: str, status: str = "Running") -> bytes:
    return json.dumps({"session_id": session, "status": status,
                       "currency": {"code": "EUR", "decimals": 2},
                       "cost_chunks": [{"cost": {"value": 1234}}]}).encode()


def notice(session: str) -> bytes:
    """A SetDisplayMessage bound to the transaction `session`, framed as EVerest frames it."""
    reply_to = "everest_api/1/display_message/display/m2e/reply/r1"
    return json.dumps({"headers": {"replyTo": reply_to}, "payload": [{
        "id": 7, "message": {"content": "Bring your cable back"}, "priority": "AlwaysFront",
        "identifier_id": session, "identifier_type": "TransactionId"}]}).encode()


class Run:
    """One run of the agent's core, and what its shell would have written to disk."""

    def __init__(self, config: Config, now: float, saved: dict[int | None, Snapshot],
                 board: bytes | None) -> None:
        self.config = config
        self.core = Station(config, now)
        self.snapshots = dict(saved)
        self.board = board
        self.carry(self.core.restore(saved, BOOT, board, now, now), now)
        self.carry(self.core.connection(True, now, now), now)

    def carry(self, fx: Effects, now: float) -> Effects:
        for key, state in fx.saves:
            self.snapshots[key] = decode_snapshot(encode_snapshot(
                snapshot_of(state, now, now, BOOT)))
        if fx.board is not None:
            self.board = encode_board(fx.board)
        return fx

    def send(self, topic: str, payload: bytes, now: float) -> Effects:
        return self.carry(self.core.receive(topic, payload, now, now), now)

    def tick(self, now: float) -> Effects:
        return self.carry(self.core.tick(now, now), now)

    def replies(self, fx: Effects) -> list[Any]:
        return [json.loads(payload) for _, payload in fx.publish]

    def shown(self, key: int | None = None) -> str | None:
        view = self.core.display(key).view
        message = view.display_message if view is not None else None
        return message.text if message is not None else None

    def restart(self, now: float) -> Run:
        return Run(self.config, now, self.snapshots, self.board)


COSTS = NO_EVSE.everest.base() + "e2m/session_cost"
SET = "everest_api/1/display_message/display/e2m/set_display_message"


def test_without_evse_tables_a_transaction_message_outlives_a_restart() -> None:
    first = Run(NO_EVSE, 10.0, {}, None)
    first.send(COSTS, cost("S1"), 11.0)
    assert first.replies(first.send(SET, notice("S1"), 12.0)) == [{"status": "Accepted"}]
    assert first.shown() == "Bring your cable back"

    again = first.restart(20.0)  # the same boot: the running session's id came back
    assert again.shown() == "Bring your cable back"
    again.send(COSTS, cost("S1"), 21.0)  # its next cost names it again
    again.tick(21.0 + WAIT_S + 1)
    assert again.shown() == "Bring your cable back"
    again.send(COSTS, cost("S1", "Finished"), 90.0)
    again.tick(91.0)
    assert again.shown() is None  # its transaction is over


def test_a_restored_session_that_never_comes_back_releases_its_messages() -> None:
    first = Run(NO_EVSE, 10.0, {}, None)
    first.send(COSTS, cost("S1"), 11.0)
    first.send(SET, notice("S1"), 12.0)
    again = first.restart(20.0)
    again.tick(20.0 + WAIT_S - 1)
    assert again.shown() == "Bring your cable back"
    again.tick(20.0 + WAIT_S)  # no cost of it: it ended while the agent was down
    assert again.shown() is None


def test_after_a_reboot_the_previous_session_is_not_taken_back() -> None:
    first = Run(NO_EVSE, 10.0, {}, None)
    first.send(COSTS, cost("S1"), 11.0)
    first.send(SET, notice("S1"), 12.0)
    rebooted = {k: msgspec.structs.replace(s, boot_id="boot-0")
                for k, s in first.snapshots.items()}
    again = Run(NO_EVSE, 5.0, rebooted, first.board)
    assert again.shown() is None


def test_with_two_evses_each_display_keeps_its_own_session_and_message() -> None:
    bases = {i: TWO_EVSES.evse[i - 1].base("") + "e2m/" for i in (1, 2)}
    display_set = SET
    first = Run(TWO_EVSES, 10.0, {}, None)
    for i, sid in ((1, "U1"), (2, "U2")):
        first.send(bases[i] + "session_event",
                   json.dumps(session_event("SessionStarted", sid)).encode(), 11.0)
    first.send(display_set, notice("U2"), 12.0)
    assert (first.shown(1), first.shown(2)) == (None, "Bring your cable back")
    again = first.restart(20.0)
    assert (again.shown(1), again.shown(2)) == (None, "Bring your cable back")
    assert again.core.display(1).state.evse_session == "U1"
    assert again.core.display(2).state.evse_session == "U2"
