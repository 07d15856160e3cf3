"""The receipt across restarts: boot id, monotonic and wall clock; the single writer."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from pathlib import Path

import msgspec
import pytest

from agent import atomic
from agent.atomic import remove_stale_temps, write_atomic
from agent.core.snapshot import (
    SNAPSHOT_NAME,
    Receipt,
    Snapshot,
    encode_snapshot,
    remaining_hold,
    restored,
)
from agent.everest.session_cost import SessionCost, decode
from agent.model.display import DisplayModel
from agent.model.state import DisplayConfig, LinkChanged, State
from agent.process import persist
from agent.process.persist import SnapshotKeeper, read_boot_id

HOLD = 120.0
MODEL = DisplayModel(DisplayConfig(finished_hold_s=HOLD))


def _session_cost(payload: bytes) -> SessionCost:
    msg = decode("session_cost", payload)
    assert isinstance(msg, SessionCost)
    return msg


FINISHED = _session_cost(json.dumps({
    "session_id": "S1", "currency": {"code": "EUR", "decimals": 2}, "status": "Finished",
    "cost_chunks": [{"cost": {"value": 777}}], "qr_code": "https://r.example/1",
    "id_tag": {"id_token": {"value": "04E1A2B3C4", "type": "ISO14443"},
               "authorization_type": "RFID"}}).encode())
RECEIPT = Receipt(session=FINISHED, ended_mono=1000.0, ended_wall=1_700_000_000.0,
                  boot_id="boot-a")


@pytest.mark.parametrize(("boot", "mono", "wall", "left"), [
    ("boot-a", 1000.0, 0.0, 120.0),              # same boot: the monotonic clock decides...
    ("boot-a", 1030.0, 9e9, 90.0),               # ...whatever the wall clock says (NTP step)
    ("boot-a", 1120.0, 0.0, None),
    ("boot-b", 5.0, 1_700_000_030.0, 90.0),      # after a reboot: the wall clock
    ("boot-b", 5.0, 1_700_000_000.0, 120.0),
    ("boot-b", 5.0, 1_700_000_120.0, None),      # more than the hold has passed
    ("boot-b", 5.0, 1_600_000_000.0, 120.0),     # clock went backwards (not synced): full hold
    ("", 1000.0, 1_700_000_060.0, 60.0),         # boot id unreadable: treated as a reboot
])
def test_remaining_hold(boot: str, mono: float, wall: float, left: float | None) -> None:
    assert remaining_hold(RECEIPT, boot, mono, wall, HOLD) == left


async def restore(keeper: SnapshotKeeper, model: DisplayModel, state: State, mono: float,
                  wall: float, hold: float = HOLD) -> State:
    """What a restarted agent's core starts from: the keeper reads the file, the core takes
    the snapshot back."""
    snapshot = await keeper.load()
    return restored(model, state, snapshot, keeper.boot_id, mono, wall, hold)


def _finished_state(at: float) -> State:
    return MODEL.update(MODEL.update(State(), LinkChanged(up=True), 0.0), FINISHED, at)


async def _save(keeper: SnapshotKeeper, state: State, mono: float, wall: float) -> None:
    keeper.request(state, mono, wall)
    keeper.close()
    await keeper.run()


def test_receipt_saved_with_both_clocks_and_no_driver_token(tmp_path: Path) -> None:
    keeper = SnapshotKeeper(str(tmp_path))
    keeper.boot_id = read_boot_id()
    asyncio.run(_save(keeper, _finished_state(at=500.0), mono=530.0, wall=2000.0))
    raw = (tmp_path / SNAPSHOT_NAME).read_bytes()
    assert b"04E1A2B3C4" not in raw and b"id_tag" not in raw
    saved = msgspec.json.decode(raw, type=Snapshot)
    assert saved.receipt is not None
    assert (saved.receipt.ended_mono, saved.receipt.ended_wall) == (500.0, 1970.0)
    assert saved.receipt.boot_id == read_boot_id() != ""
    assert os.stat(tmp_path / SNAPSHOT_NAME).st_mode & 0o777 == 0o600


def _restore(tmp_path: Path, receipt: Receipt, mono: float, wall: float) -> State:
    (tmp_path / SNAPSHOT_NAME).write_bytes(encode_snapshot(Snapshot(receipt=receipt)))
    keeper = SnapshotKeeper(str(tmp_path))
    return asyncio.run(restore(keeper, MODEL, State(link_up=True), mono, wall))


def test_restore_same_boot_keeps_the_rest_of_the_hold(tmp_path: Path) -> None:
    receipt = msgspec.structs.replace(RECEIPT, boot_id=read_boot_id())
    state = _restore(tmp_path, receipt, mono=1100.0, wall=0.0)
    assert MODEL.view(state).screen == "finished"
    assert MODEL.next_deadline(state) == 1120.0


def test_restore_after_reboot_by_wall_clock(tmp_path: Path) -> None:
    receipt = msgspec.structs.replace(RECEIPT, boot_id="another-boot")
    state = _restore(tmp_path, receipt, mono=7.0, wall=1_700_000_100.0)
    assert (MODEL.view(state).screen, MODEL.next_deadline(state)) == ("finished", 27.0)
    state = _restore(tmp_path, receipt, mono=7.0, wall=1_700_000_500.0)
    assert MODEL.view(state).screen == "price"


def test_unconfirmed_end_is_restored_as_not_final(tmp_path: Path) -> None:
    running = msgspec.structs.replace(FINISHED, status="Running")
    receipt = msgspec.structs.replace(RECEIPT, session=running, final=False,
                                      boot_id=read_boot_id())
    view = MODEL.view(_restore(tmp_path, receipt, mono=1010.0, wall=0.0))
    assert (view.screen, view.final) == ("finished", False)


def test_temp_files_of_an_interrupted_write_are_removed(tmp_path: Path) -> None:
    (tmp_path / f".{SNAPSHOT_NAME}.k2j3h4.tmp").write_bytes(b"")
    (tmp_path / f".{SNAPSHOT_NAME}.x9y8z7.tmp").write_bytes(b"{")
    (tmp_path / "keep.tmp").write_bytes(b"mine")
    keeper = SnapshotKeeper(str(tmp_path))
    asyncio.run(restore(keeper, MODEL, State(), 0.0, 0.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.tmp"]


def test_write_atomic_temp_names_are_the_ones_cleaned(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / SNAPSHOT_NAME
    write_atomic(target, b"one", durable=False)
    write_atomic(target, b"two", mode=0o600)
    assert target.read_bytes() == b"two" and target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [SNAPSHOT_NAME]

    # A write interrupted by a power cut leaves its temp file: the next start removes it.
    def cut(*_: object) -> None:
        raise OSError("power cut")

    leftover = tmp_path / f".{SNAPSHOT_NAME}.{os.getpid()}-0.tmp"
    leftover.write_bytes(b"{")  # a name taken by an earlier process is skipped (O_EXCL)
    monkeypatch.setattr(atomic, "_TEMP_COUNTER", itertools.count())
    monkeypatch.setattr(os, "replace", cut)
    with pytest.raises(OSError, match="power cut"):
        write_atomic(target, b"three")
    monkeypatch.undo()
    assert leftover.read_bytes() == b"{" and target.read_bytes() == b"two"
    assert remove_stale_temps(str(tmp_path)) == 1
    assert [p.name for p in tmp_path.iterdir()] == [SNAPSHOT_NAME]


def test_the_last_requested_snapshot_is_the_one_on_disk(tmp_path: Path) -> None:
    async def scenario() -> None:
        keeper = SnapshotKeeper(str(tmp_path))
        writer = asyncio.create_task(keeper.run())
        for i in range(50):
            price = decode("default_price", json.dumps(
                {"messages": [{"content": f"price {i}"}]}).encode())
            state = MODEL.update(State(), price, 0.0)  # type: ignore[arg-type]
            keeper.request(state, 0.0, 0.0)
            if i % 7 == 0:
                await asyncio.sleep(0)
        keeper.close()
        await asyncio.wait_for(writer, 10)
    asyncio.run(scenario())
    saved = msgspec.json.decode((tmp_path / SNAPSHOT_NAME).read_bytes(), type=Snapshot)
    assert saved.default_price is not None
    assert saved.default_price.messages[0].content == "price 49"


def test_a_cancelled_slow_write_never_lands_after_the_final_save(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time


    real = persist._write_private

    def slow_old(path: str, data: bytes) -> None:
        if b'"old"' in data:
            time.sleep(0.5)  # a slow flash write still in flight when the stop comes
        real(path, data)

    monkeypatch.setattr(persist, "_write_private", slow_old)

    def price(text: str) -> State:
        msg = decode("default_price", json.dumps({"messages": [{"content": text}]}).encode())
        return MODEL.update(State(), msg, 0.0)  # type: ignore[arg-type]

    async def scenario() -> None:
        keeper = SnapshotKeeper(str(tmp_path))
        writer = asyncio.create_task(keeper.run())
        keeper.request(price("old"), 0.0, 0.0)
        await asyncio.sleep(0.1)
        writer.cancel()  # the task group cancels the writer at stop
        await asyncio.gather(writer, return_exceptions=True)
        keeper.request(price("final"), 0.0, 0.0)  # the final save at shutdown
        keeper.close()
        await keeper.run()
        await asyncio.sleep(0.6)  # the old thread has long finished by now
    asyncio.run(scenario())
    saved = msgspec.json.decode((tmp_path / SNAPSHOT_NAME).read_bytes(), type=Snapshot)
    assert saved.default_price is not None
    assert saved.default_price.messages[0].content == "final"


def test_a_save_equal_to_the_saved_state_still_lands_after_a_cancelled_write(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Saved "first"; a write of "old" is cut off by the stop; the final state is "first"
    again: the disk must end with "first", not with the old write landing last."""
    import threading

    real = persist._write_private
    started, gate, landed = threading.Event(), threading.Event(), threading.Event()

    def held(path: str, data: bytes) -> None:
        if b'"old"' in data:
            started.set()
            gate.wait(10)
            real(path, data)
            landed.set()
            return
        real(path, data)

    monkeypatch.setattr(persist, "_write_private", held)

    def price(text: str) -> State:
        msg = decode("default_price", json.dumps({"messages": [{"content": text}]}).encode())
        return MODEL.update(State(), msg, 0.0)  # type: ignore[arg-type]

    def on_disk() -> str:
        saved = msgspec.json.decode((tmp_path / SNAPSHOT_NAME).read_bytes(), type=Snapshot)
        assert saved.default_price is not None
        return saved.default_price.messages[0].content

    async def scenario() -> None:
        keeper = SnapshotKeeper(str(tmp_path))
        writer = asyncio.create_task(keeper.run())
        keeper.request(price("first"), 0.0, 0.0)
        keeper.request(price("first"), 0.0, 0.0)
        for _ in range(500):
            if (tmp_path / SNAPSHOT_NAME).exists():
                break
            await asyncio.sleep(0.01)
        keeper.request(price("old"), 0.0, 0.0)
        await asyncio.to_thread(started.wait, 10)
        writer.cancel()  # the task group cancels the writer at stop
        await asyncio.gather(writer, return_exceptions=True)
        keeper.request(price("first"), 0.0, 0.0)  # the final save: the state saved before
        keeper.close()
        threading.Timer(0.2, gate.set).start()  # the slow flash write ends meanwhile
        await keeper.run()
        await asyncio.to_thread(landed.wait, 10)
    asyncio.run(scenario())
    assert on_disk() == "first"


def test_the_evse_session_survives_a_restart_within_the_boot(tmp_path: Path) -> None:
    from agent.everest.evse_manager import EvseId, MeterPublicKey, SessionEvent, decode_evse
    from tests.everest_events import session_event

    model = DisplayModel(DisplayConfig(), evse=1)
    raw = json.dumps(session_event("SessionStarted", "U1")).encode()
    started = decode_evse("session_event", raw)
    assert isinstance(started, SessionEvent)
    state = model.update(model.update(State(), started, 1.0), EvseId("DE*PNX*E1*1"), 1.0)
    state = model.update(state, MeterPublicKey("3059301306072A8648CE3D0201"), 1.0)

    async def save_and_restore(boot_id: str) -> State:
        keeper = SnapshotKeeper(str(tmp_path))
        keeper.boot_id = boot_id
        keeper.request(state, 2.0, 2.0)
        keeper.close()
        await keeper.run()
        again = SnapshotKeeper(str(tmp_path))
        return await restore(again, model, State(), 3.0, 3.0)

    restored = asyncio.run(save_and_restore(read_boot_id()))
    assert (restored.evse_session, restored.evse_id) == ("U1", "DE*PNX*E1*1")
    (tmp_path / SNAPSHOT_NAME).unlink()
    restored = asyncio.run(save_and_restore("an earlier boot"))
    assert (restored.evse_session, restored.evse_id) == (None, "DE*PNX*E1*1")
    # published once, when EVerest starts: kept across reboots like the EVSE id
    assert restored.meter_public_key == "3059301306072A8648CE3D0201"


def test_without_evse_the_running_session_is_saved_and_its_end_too(tmp_path: Path) -> None:
    """The keeper writes a change of the running session's id alone (its display messages
    outlive a restart by it), and writes its end."""
    running = msgspec.structs.replace(FINISHED, status="Running")
    state = MODEL.update(MODEL.update(State(), LinkChanged(up=True), 0.0), running, 10.0)

    async def save(state: State) -> Snapshot:
        keeper = SnapshotKeeper(str(tmp_path))
        keeper.boot_id = "boot-a"
        await _save(keeper, state, 11.0, 1000.0)
        return msgspec.json.decode((tmp_path / SNAPSHOT_NAME).read_bytes(), type=Snapshot)

    saved = asyncio.run(save(state))
    assert (saved.session_id, saved.boot_id) == ("S1", "boot-a")
    ended = MODEL.update(state, FINISHED, 12.0)
    saved = asyncio.run(save(ended))
    assert saved.session_id is None and saved.receipt is not None
