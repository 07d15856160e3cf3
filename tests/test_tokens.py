"""Drivers' RFID tokens never leave the agent: at `--log-level debug` (gmqtt's packet dumps
included), through the real process and broker with two EVSEs, no token is in the log, the
status file, the state dir or a view."""

from __future__ import annotations

import asyncio
from importlib.metadata import version
from pathlib import Path

from agent.dev.broker import Mosquitto
from tests.harness import AgentProcess, Everest, cost, wait_until
from tests.test_evse_integration import SESSIONS, Station, config, on_screen, view

# gmqtt 0.8 logs every packet at debug level (`cmd: ..., packet: ...`); 0.7 and older do not.
GMQTT_DUMPS_PACKETS = tuple(int(p) for p in version("gmqtt").split(".")[:2]) >= (0, 8)
TOKENS = {1: "RFID-04A2B3C4D5E6F7", 2: "EMAID-DEXYZC1234567"}


def exposed(tmp: Path, agent: AgentProcess) -> dict[str, str]:
    """Everything the agent wrote that a person or another program can read."""
    texts = {"log": agent.log()}
    for path in tmp.rglob("*"):
        if path.is_file() and path.name not in ("agent.toml",):
            texts[str(path.relative_to(tmp))] = path.read_bytes().decode(errors="replace")
    return texts


def test_no_rfid_token_anywhere_at_debug_level(broker: Mosquitto, tmp_path: Path) -> None:
    async def scenario() -> None:
        agent = await AgentProcess(config(tmp_path, broker.port)).start()  # --log-level debug
        sim = await Everest(broker.port).connect()
        station = Station(sim)
        beats = asyncio.create_task(station.heartbeats())
        try:
            await wait_until(on_screen(tmp_path, 1, "price"), what="EVSE 1 up")
            for i in (1, 2):  # the authorization tariff, then the session and transaction
                sim.send("tariff_message", {
                    "identifier_id": TOKENS[i], "identifier_type": "IdToken",
                    "messages": [{"content": f"Welcome, driver {i}"}]})
                station.event(i, "SessionStarted", TOKENS[i])
                station.event(i, "TransactionStarted", TOKENS[i])
                sim.send("session_cost", cost(SESSIONS[i]))
            for i in (1, 2):
                await wait_until(on_screen(tmp_path, i, "charging"), what=f"EVSE {i} charging")
            assert view(tmp_path, 1)["session_id"] == SESSIONS[1]
            if GMQTT_DUMPS_PACKETS:  # its packet dumps ran, with sizes for bytes
                assert "packet: <" in agent.log()
            for where, text in exposed(tmp_path, agent).items():
                for token in TOKENS.values():
                    assert token not in text, f"token in {where}"
            assert await agent.terminate() == 0
            for where, text in exposed(tmp_path, agent).items():
                for token in TOKENS.values():
                    assert token not in text, f"token in {where} after stop"
        finally:
            beats.cancel()
            await agent.kill()
            await sim.close()
    asyncio.run(scenario())
