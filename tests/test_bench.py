"""The decode benchmark runs and reports; its payloads are valid. No speed is asserted here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Final

import msgspec
import pytest

from agent.everest.session_cost import (
    Cleared,
    DefaultPrice,
    Heartbeat,
    SessionCost,
    TariffMessage,
    decode,
)
from agent.model.display import DisplayModel
from agent.model.state import DisplayConfig, State
from agent.model.view import encode_view
from bench import payloads
from bench.decode import (
    CHECK_CASE,
    CHECK_LIMITS,
    COLUMNS,
    TABLE_HEADER,
    Row,
    as_json,
    check,
    gated,
    table,
)

ROOT: Final = Path(__file__).resolve().parent.parent
SCRIPT: Final = ROOT / "bench" / "decode.py"


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False, env={**os.environ, **(env or {})})


# The session cost API's rows (the display_message row has its own test below).
SESSION_COST_CASES = [n for n, (t, _) in payloads.CASES.items() if t != "set_display_message"]


@pytest.mark.parametrize("name", SESSION_COST_CASES)
def test_payloads_decode(name: str) -> None:
    topic, factory = payloads.CASES[name]
    first, second = decode(topic, factory()), decode(topic, payloads.ALTERNATES[name]())
    assert type(first) is type(second)
    assert isinstance(first, DefaultPrice | TariffMessage | SessionCost)
    assert first != second


def test_typical_session_cost_is_everest_shaped() -> None:
    payload = payloads.session_cost()
    assert 1000 <= len(payload) <= 2000
    msg = decode("session_cost", payload)
    assert isinstance(msg, SessionCost)
    assert msg.cost_chunks is not msgspec.UNSET and len(msg.cost_chunks) == 1
    assert msg.charging_price is not msgspec.UNSET
    assert {c.category for c in msg.charging_price if c} == {"Energy", "Time", "FlatFee"}
    assert msg.idle_price is not msgspec.UNSET and msg.next_period is not msgspec.UNSET
    assert msg.message is not msgspec.UNSET and len(msg.message) >= 2
    # The payload carries the driver's id_tag, as EVerest's may; the agent does not decode it.
    assert msg.qr_code and b'"id_tag"' in payload and not hasattr(msg, "id_tag")
    large = decode("session_cost", payloads.large_session_cost())
    assert isinstance(large, SessionCost) and large.cost_chunks is not msgspec.UNSET
    assert len(large.cost_chunks) == 100


def test_heartbeat_payload_decodes() -> None:
    assert decode("heartbeat", payloads.heartbeat(7)) == Heartbeat(7)


@pytest.mark.parametrize("name", SESSION_COST_CASES)
def test_alternating_payloads_change_the_view(name: str) -> None:
    topic, factory = payloads.CASES[name]
    model = DisplayModel(DisplayConfig())
    state = State(link_up=True)
    views = []
    for payload in (factory(), payloads.ALTERNATES[name]()):
        msg = decode(topic, payload)
        assert not isinstance(msg, Heartbeat | Cleared)
        state = model.update(state, msg, 0.0)
        views.append(encode_view(model.view(state)))
    assert views[0] != views[1]


def test_the_display_message_rows_alternate_between_two_valid_requests() -> None:
    from agent.everest.display_message import decode as decode_request

    first, second = (decode_request("set_display_message", f())[1] for f in (
        payloads.set_display_message, payloads.ALTERNATES["set_display_message"]))
    assert isinstance(first, list) and isinstance(second, list) and first != second


def test_pydantic_models_accept_the_payloads() -> None:
    pytest.importorskip("pydantic")
    from bench.pydantic_models import MODELS  # optional dev extra

    for topic, factory in payloads.CASES.values():
        if topic in MODELS:  # the session cost API's topics (the comparison column)
            MODELS[topic].model_validate_json(factory())


def test_table_and_check_format() -> None:
    fast = Row("session_cost", "session_cost", 1234,
               {"decode": 300.0, "full": 900.0, "json": 1000.0, "pydantic": None})
    slow = Row("session_cost", "session_cost", 1234,
               {"decode": 700.0, "full": 1300.0, "json": 1000.0, "pydantic": 2000.0})
    text = table([fast])
    assert text.splitlines()[0] == TABLE_HEADER
    assert "n/a" in text and "0.30" in text
    assert check([fast]) == []
    failures = check([slow])
    assert len(failures) == 2
    assert "typed decode" in failures[0] and "0.6x" in failures[0]
    assert "decode+update+view+encode" in failures[1] and "1.2x" in failures[1]
    doc = as_json([slow], failures)
    assert doc["check"]["passed"] is False
    assert doc["rows"][0]["ratio_vs_json"]["decode"] == 0.7


def test_quick_check_runs_and_prints_table() -> None:
    result = _run("--check", "--quick")
    assert result.returncode in (0, 1), result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == TABLE_HEADER
    for name in payloads.CASES:
        assert any(line.split()[0] == name for line in lines[1:]), result.stdout
    if result.returncode == 1:
        assert "CHECK FAILED" in result.stderr
    else:
        assert "check passed" in result.stderr


def test_quick_json_output() -> None:
    result = _run("--json", "--quick", "--check")
    assert result.returncode in (0, 1), result.stderr
    doc = json.loads(result.stdout)
    assert [row["name"] for row in doc["rows"]] == list(payloads.CASES)
    for row in doc["rows"]:
        assert set(row["ns"]) == set(COLUMNS)
        # A display_message request updates no display by itself: no `full` column.
        timed = ("decode", "json") if row["topic"] == "set_display_message" else (
            "decode", "full", "json")
        for column in timed:
            assert row["ns"][column] > 0
    assert doc["check"]["case"] == CHECK_CASE
    assert doc["check"]["passed"] is (result.returncode == 0)


def test_under_emulation_only_typed_decode_is_gated() -> None:
    # The full path is interpreted Python, json.loads is C: qemu-user slows them unequally.
    assert gated(emulated=False) == CHECK_LIMITS
    assert gated(emulated=True) == {"decode": CHECK_LIMITS["decode"]}
    slow_python = Row("session_cost", "session_cost", 1234,
                      {"decode": 300.0, "full": 1300.0, "json": 1000.0, "pydantic": None})
    assert check([slow_python], gated(emulated=True)) == []
    assert len(check([slow_python], gated(emulated=False))) == 1
    slow_decode = Row("session_cost", "session_cost", 1234,
                      {"decode": 700.0, "full": 900.0, "json": 1000.0, "pydantic": None})
    assert len(check([slow_decode], gated(emulated=True))) == 1
    doc = as_json([slow_python], [], gated(emulated=True), attempts=2)
    assert doc["check"] == {"case": CHECK_CASE, "limits": {"decode": 0.6}, "passed": True,
                            "failures": [], "attempts": 2}


def test_emulated_check_says_what_it_does_not_gate() -> None:
    result = _run("--check", "--quick", "--attempts", "1", env={"COST_AGENT_EXPECT_QEMU_USER": "1"})
    if result.returncode == 0:
        assert "full reported, not gated" in result.stderr
    else:  # only the typed decode can fail it
        assert "CHECK FAILED: session_cost: typed decode" in result.stderr, result.stderr
        assert "decode+update" not in result.stderr


def test_attempts_must_be_positive() -> None:
    result = _run("--check", "--attempts", "0")
    assert result.returncode == 2 and "--attempts" in result.stderr
