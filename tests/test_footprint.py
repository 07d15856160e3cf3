"""The footprint bench runs against a private broker and reports its figures; the memory limits
hold (RSS does not depend on how busy the machine is).

The timing limits (start ratio, idle CPU) are for `bench/footprint.py --check` on a quiet
machine: here only that those figures are produced and plausible, so that a loaded CI machine
does not fail the suite.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest

from bench.footprint import (
    LIMITS,
    Figures,
    Growth,
    _length,
    _mix,
    failures,
    publish_packet,
    table,
)
from tests.harness import EMULATED

ROOT: Final = Path(__file__).resolve().parent.parent
SCRIPT: Final = ROOT / "bench" / "footprint.py"


def _figures(rss_kb: float = 24000.0, start_ms: float = 100.0, cpu: float = 0.1,
             growth_kb: int = 100, web_kb: float = 1024.0, floor_kb: float = 23000.0
             ) -> Figures:
    return Figures(loop="auto", bare_start_ms=60.0, bare_rss_kb=20000.0, start_ms=start_ms,
                   rss_kb=rss_kb, stop_ms=30.0, idle_cpu_pct=cpu,
                   growth=Growth(20000, 20000 + growth_kb, 1000, 1000), exit_statuses=[0, 0],
                   web_rss_kb=rss_kb + web_kb, floor_rss_kb=floor_kb)


def test_mqtt_remaining_length_encoding() -> None:
    assert _length(0) == b"\x00"
    assert _length(127) == b"\x7f"
    assert _length(128) == b"\x80\x01"
    assert _length(16383) == b"\xff\x7f"
    assert _length(2097152) == b"\x80\x80\x80\x01"


def test_publish_packet_layout() -> None:
    assert publish_packet("a/b", b"42") == b"\x30\x07\x00\x03a/b42"


def test_message_mix_is_mostly_heartbeats_with_increasing_ids() -> None:
    packets = list(_mix(20))
    beats = [p for p in packets if b"e2m/heartbeat" in p]
    assert len(beats) == 16
    assert sum(b"e2m/session_cost" in p for p in packets) == 2
    assert sum(b"e2m/default_price" in p for p in packets) == 2
    ids = [int(p.rsplit(b"heartbeat", 1)[1]) for p in beats]
    assert ids == sorted(ids)


def test_limits_and_table() -> None:
    good = _figures()
    assert failures(good) == []
    text = table([good])
    assert "1.200" in text and "RSS ratio" in text and "+0.10" in text
    assert "web output" in text and "+1.00" in text
    assert "agent's own RSS" in text and "0.98" in text  # (24000 - 23000) / 1024
    bad = _figures(rss_kb=30000.0, start_ms=200.0, cpu=0.5, growth_kb=2000, web_kb=3000)
    problems = failures(bad)
    assert len(problems) == len(LIMITS), problems
    # Without timing, only the memory limits count.
    assert len(failures(bad, timing=False)) == len(LIMITS) - 2
    lost = _figures()
    assert lost.growth is not None
    lost.growth.received = 900
    assert failures(lost) == ["auto: the agent took 900 of 1000 messages"]


def test_quick_run_reports_every_figure() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--runs", "1", "--idle", "2",
         "--messages", "3000", "--settle", "0.5", "--json", "--source"],
        cwd=ROOT, capture_output=True, text=True, timeout=600 if EMULATED else 120, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("RSS ratio") for line in lines), result.stdout
    (doc,) = json.loads(lines[-1])
    assert doc["loop"] == "auto"
    for key in ("bare_start_ms", "bare_rss_kb", "start_ms", "rss_kb", "stop_ms", "rss_ratio",
                "start_ratio"):
        assert doc[key] > 0, key
    assert doc["idle_cpu_pct"] >= 0
    assert 0.5 < doc["rss_ratio"] < 5 and doc["start_ratio"] > 0.5
    assert doc["growth_sent"] == doc["growth_received"] > 0
    assert abs(doc["growth_mb"]) < 50
    # The web output measured with two open pages: some RAM, less than the whole agent's.
    assert 0 < doc["web_rss_kb"] - doc["rss_kb"] < doc["rss_kb"]
    # The libraries alone: more than bare python, less than the agent.
    assert doc["bare_rss_kb"] < doc["floor_rss_kb"] < doc["rss_kb"]


@pytest.mark.skipif(EMULATED, reason="under qemu-user RSS is the emulator's; scripts/arm.sh "
                                     "reports the guest's own mappings")
def test_the_agents_own_memory_and_the_web_outputs_stay_within_their_limits() -> None:
    # Issue 20: the agent's own RSS over its libraries alone (asyncio, msgspec, gmqtt, uvloop
    # and its loop) within 2 MiB (1.44-1.64 MiB measured), the web output with two pages open
    # within 2 MiB (issue 18; 1.4 measured), in a venv holding what the board's image holds.
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--rss-only", "--runs", "3", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    (doc,) = json.loads(result.stdout.splitlines()[-1])
    print(result.stdout)
    assert doc["own_mb"] <= LIMITS["own_mb"], result.stdout
    assert doc["web_mb"] <= LIMITS["web_mb"], result.stdout
    assert doc["exit_statuses"] == [0, 0, 0]  # SIGTERM: a clean stop


# Issue 25: what the soak says the agent took is what the agent counted when it stopped, so it
# agrees with the probe's count also when the status file's periodic writes lag far behind the
# agent (an emulated board: 1905 read against 3000 decoded).
@pytest.mark.parametrize("status_interval", ["0.05", "1.5"])
def test_the_soak_reports_what_was_taken_the_longest_standstill_and_what_the_agent_did(
        status_interval: str) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--soak", "3000", "--rate", "2000", "--source", "--probe",
         "--status-interval", status_interval],
        cwd=ROOT, capture_output=True, text=True, timeout=600 if EMULATED else 120, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    (line,) = [x for x in lines if x.startswith("soak: ")]
    assert line.startswith("soak: 3000 session_costs at 2000/s: took "), line
    taken = int(line.split("took ")[1].split()[0])
    assert 0 < taken <= 3000
    assert "longest standstill" in line
    # The probe inside the agent saw every decode the status file counted, and the gaps.
    (probe,) = [x for x in lines if x.startswith("probe: ") and "decodes in" in x]
    assert int(probe.split()[1]) == taken, probe
    assert "gen 2:" in probe and "waited for a CPU" in probe
    gaps = lines[lines.index(probe) + 2:]
    assert len(gaps) == 10 and all(" = " in g for g in gaps), gaps
    walls = [float(g.split("=")[0]) for g in gaps]
    assert walls == sorted(walls, reverse=True) and walls[0] > 0
