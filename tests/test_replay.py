"""`cost-agent replay` (issue 26): a capture of a station's broker traffic, through the same
station core, prints what each display showed and when, on a clock that follows the capture."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.dev.replay import run
from agent.settings.config import parse
from tests.harness import REPO

DOCS = REPO / "docs" / "replay"
T0 = 1_796_600_000.0  # 2026-12-06T23:33:20Z
BASE = "everest_api/1/session_cost_consumer/session_cost_consumer/e2m/"
CONFIG = parse('[watchdog]\nheartbeat_timeout_s = 3.0\n[display]\nfinal_cost_wait_s = 2\n'
               '[state]\ndir = ""\n[status]\npath = ""\n')


def replay(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "agent", "replay", *args], cwd=REPO,
                          capture_output=True, timeout=120, check=False)


def test_the_demo_capture_prints_what_the_docs_say_and_the_same_bytes_twice() -> None:
    capture, config = str(DOCS / "demo-capture.jsonl"), str(DOCS / "station.toml")
    first, second = replay(capture, "--config", config), replay(capture, "--config", config)
    assert first.returncode == 0, first.stderr
    golden = (DOCS / "demo-replay.txt").read_text()
    assert first.stdout == second.stdout == golden.encode()
    messages = len(Path(capture).read_text().splitlines())
    frames = len(re.findall(r"^\S+Z (?:evse \d|station)$", golden, re.MULTILINE))
    assert first.stderr.decode().strip().endswith(
        f"replay: {messages} messages, 0 bad lines skipped, {frames} screens shown")
    one = replay(capture, "--config", config, "--json", "--evse", "2")
    assert one.stdout == (DOCS / "demo-replay-evse2.jsonl").read_bytes()
    lines = [json.loads(line) for line in one.stdout.splitlines()]
    assert {line["evse"] for line in lines} == {2}
    assert [line["time"] for line in lines] == sorted(line["time"] for line in lines)
    screens = [line["view"]["screen"] for line in lines]
    assert screens[0] == "price" and screens[-1] == "finished" and "charging" in screens


def test_an_evse_the_config_does_not_have_is_refused() -> None:
    result = replay(str(DOCS / "demo-capture.jsonl"), "--config", str(DOCS / "station.toml"),
                    "--evse", "3")
    assert result.returncode == 2 and b"--evse 3" in result.stderr


def as_j(at: float, topic: str, payload: bytes) -> str:
    """A line as `mosquitto_sub -F %j` 2.0 writes it."""
    stamp = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ+0000")
    return json.dumps({"tst": stamp, "topic": topic, "qos": 0, "retain": 0,
                       "payloadlen": len(payload), "payload": payload.decode()}) + "\n"


def as_hex(at: float, topic: str, payload: bytes) -> str:
    """A line as `mosquitto_sub -F '%U %t %x'` writes it."""
    return f"{at:.9f} {topic} {payload.hex()}\n"


def cost(status: str, value: int) -> bytes:
    return json.dumps({"session_id": "S1", "status": status,
                       "currency": {"code": "EUR", "decimals": 2},
                       "cost_chunks": [{"cost": {"value": value}}]}, indent=4).encode()


# heartbeats each second until 3 s in; a session; then silence until a late heartbeat at 20 s
TRAFFIC = [(T0 + s, BASE + "heartbeat", str(s).encode()) for s in range(4)] + [
    (T0 + 1.5, BASE + "session_cost", cost("Running", 250)),
    (T0 + 2.5, BASE + "session_cost", cost("Finished", 400)),
    (T0 + 20.0, BASE + "heartbeat", b"20"),
]


def screens(text: str) -> list[tuple[str, str]]:
    """(time, screen) of each view line of a --json replay."""
    return [(d["time"], d["view"]["screen"]) for d in map(json.loads, text.splitlines())]


def replayed(lines: list[str], as_json: bool = True) -> tuple[str, str, int]:
    out, err = io.StringIO(), io.StringIO()
    code = run(CONFIG, io.StringIO("".join(lines)), out, err, as_json=as_json)
    return out.getvalue(), err.getvalue(), code


@pytest.mark.parametrize("form", [as_j, as_hex])
def test_both_capture_formats_play_out_on_the_captures_clock(form: Any) -> None:
    out, err, code = replayed([form(*m) for m in sorted(TRAFFIC, key=lambda m: m[0])])
    assert code == 0, err
    assert screens(out) == [
        ("2026-12-06T23:33:20.000Z", "price"),
        ("2026-12-06T23:33:21.500Z", "charging"),
        ("2026-12-06T23:33:22.500Z", "finished"),
        # the last heartbeat came at 3 s: the link is down 3 s later (heartbeat_timeout_s)
        ("2026-12-06T23:33:26.000Z", "finished"),
        ("2026-12-06T23:33:40.000Z", "finished"),  # back with the late heartbeat
    ]
    views = [json.loads(line)["view"] for line in out.splitlines()]
    assert [v["link"] for v in views[2:]] == ["up", "down", "up"]
    assert views[2]["total"]["text"] == "4.00 EUR"


def test_a_bad_line_is_named_by_its_number_skipped_and_counted() -> None:
    lines = [as_j(*m) for m in sorted(TRAFFIC, key=lambda m: m[0])]
    lines.insert(2, "this is not a capture line\n")
    lines.insert(5, '{"tst": "yesterday", "topic": "x", "payload": ""}\n')
    out, err, code = replayed(lines)
    assert code == 0
    assert "replay: line 3: neither a -F %j object nor '%U %t %x'; skipped" in err
    assert "replay: line 6: tst 'yesterday' is not a time; skipped" in err
    assert err.strip().endswith("replay: 7 messages, 2 bad lines skipped, 5 screens shown")
    assert len(screens(out)) == 5


def test_the_console_frames_name_the_display_and_the_time() -> None:
    out, _, _ = replayed([as_hex(*m) for m in TRAFFIC[:5]], as_json=False)
    assert out.startswith("2026-12-06T23:33:20.000Z station\n+")
    assert "2026-12-06T23:33:21.500Z station\n+" in out and "2.50 EUR" in out


def test_the_docs_capture_is_what_mosquitto_sub_writes() -> None:
    first = json.loads((DOCS / "demo-capture.jsonl").read_text().splitlines()[0])
    assert set(first) == {"tst", "topic", "qos", "retain", "payloadlen", "payload"}
    assert Path(DOCS / "station.toml").exists()
