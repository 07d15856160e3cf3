"""`cost-agent status` reads the running agent's status file: two EVSEs on a real broker, the real
agent process, the command as an integrator types it over SSH."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from agent.dev.broker import Mosquitto
from tests.harness import REPO, AgentProcess, Everest, read_json, wait_until
from tests.tasks import cancelled
from tests.test_evse_integration import SESSIONS, Station, config, view


def status(path: Path, *flags: str) -> tuple[int, str]:
    """Run `cost-agent status --path <path>`; its exit code and output."""
    done = subprocess.run([sys.executable, "-m", "agent", "status", "--path", str(path), *flags],
                          capture_output=True, text=True, cwd=REPO, timeout=30, check=False)
    return done.returncode, done.stdout + done.stderr


def with_failing_output(tmp: Path, port: int) -> Path:
    path = config(tmp, port)
    # A 1 s interval: "stale" is 3 intervals, and a slow (emulated) board must not look stopped.
    text = path.read_text().replace("interval_s = 0.2", "interval_s = 1")
    path.write_text(text + '[[output]]\ntype = "exec"\nname = "hook"\n'
                    'evse = 1\nargv = ["/bin/sh", "-c", "echo no display >&2; exit 3"]\n')
    return path


def test_no_status_file_exits_2(tmp_path: Path) -> None:
    code, text = status(tmp_path / "status.json")
    assert code == 2
    assert "no status file" in text


def test_status_summarises_each_evse_and_says_when_attention_is_needed(
        broker: Mosquitto, tmp_path: Path) -> None:
    path = tmp_path / "status.json"

    async def scenario() -> None:
        async def command(*flags: str) -> tuple[int, str]:
            # In a thread: the heartbeats go on meanwhile (a command takes seconds under qemu,
            # longer than the links' 1.5 s heartbeat timeout).
            return await asyncio.to_thread(status, path, *flags)

        sim = await Everest(broker.port).connect()
        station = Station(sim)
        beats = asyncio.create_task(station.heartbeats())
        agent = await AgentProcess(with_failing_output(tmp_path, broker.port)).start()
        try:
            await wait_until(lambda: view(tmp_path, 1).get("link") == "up"
                             and view(tmp_path, 2).get("link") == "up", what="both links up")
            station.event(1, "SessionStarted")
            station.info(1, 1000, 7400)
            station.evse(2, "session_info", {"state": "Charging"})  # invalid: rejected
            station.evse(2, "session_info", {"state": "Charging"})

            def counted(doc: dict[str, Any] | None) -> bool:
                return bool(doc and doc["evse"]["2"]["rejected"]["session_info"] == 2
                            and doc["evse"]["1"]["session_id"] == SESSIONS[1]
                            and doc["outputs"]["hook"]["failing"])
            await wait_until(lambda: counted(read_json(path)), what="rejections counted")

            code, text = await command()
            assert code == 0, text
            assert "cost-agent: OK" in text
            evse1 = next(line for line in text.splitlines() if "EVSE 1 " in line)
            evse2 = next(line for line in text.splitlines() if "EVSE 2 " in line)
            # (the screen as the status file had it; the view file may be newer by now)
            assert "link up" in evse1
            assert re.search(r", screen (price|charging|unavailable),", evse1)
            assert f"session {SESSIONS[1]}" in evse1 and "rejected none" in evse1
            assert "session -" in evse2 and "rejected session_info 2" in evse2
            station_line = next(line for line in text.splitlines() if "session cost API" in line)
            assert "screen" not in station_line  # a station has no one screen: EVSE 1's is not it
            assert "broker connected, 0 reconnects" in text
            assert "output hook: failing" in text and "last error: " in text
            assert "healthy" in text

            code, text = await command("--json")
            doc = json.loads(text)
            assert code == 0 and doc["ok"] is True and doc["problems"] == [], doc["problems"]
            assert doc["status"]["evse"]["1"]["session_id"] == SESSIONS[1]
            assert "screen" not in doc["status"] and "session_id" not in doc["status"]
            assert doc["status"]["evse"]["1"]["last_message_age_s"] < 5
            # Main, log writer, and a lane per owner that wrote lately: the status file, each
            # EVSE's snapshot and file output (agent/lanes.py); the exec hook needs none.
            assert 1 <= doc["status"]["threads"] <= 2 + 1 + 2 + 2

            # EVSE 2's module goes silent: its link is down, the command says so and exits 1.
            station.alive[2] = False
            await wait_until(lambda: (s := read_json(path)) and s["evse"]["2"]["link"] == "down",
                             what="EVSE 2 down")
            code, text = await command()
            assert code == 1, text
            assert "cost-agent: ATTENTION" in text and "EVSE 2 link down" in text
            code, text = await command("--json")
            assert code == 1 and json.loads(text)["problems"] == ["EVSE 2 link down"]

            # The agent stops: its last file stays, grows older than 3 intervals, and looks stale.
            station.alive[2] = True
            assert await agent.terminate() == 0
            await asyncio.sleep(3.5)  # > 3 x interval_s (1 s)
            code, text = await command()
            assert code == 1, text
            assert "the agent looks stopped" in text
        finally:
            await cancelled(beats)
            await agent.kill()
            await sim.close()
    asyncio.run(scenario())


def test_the_display_message_module_is_summarised_and_its_link_watched() -> None:
    from agent.process.status_report import assess, summary

    doc: dict[str, Any] = {
        "interval_s": 1, "link": "up", "uptime_s": 60, "broker": {"connected": True},
        "display_messages": {"module_id": "display", "link": "up", "messages": 2,
                             "last_message_age_s": 0.4, "rejected": {"set_display_message": 1}}}
    assert assess(doc, 0.5) == []
    text = summary(doc, 0.5, [])
    assert ("display_message API (display): link up, last message 0.4 s ago, rejected "
            "set_display_message 1, 2 message(s) kept") in text
    doc["display_messages"]["link"] = "down"
    assert assess(doc, 0.5) == ["display_message API link down"]
