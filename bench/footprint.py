"""Footprint and stop latency of the real agent process: RSS when idle, SIGTERM to exit.

Usage: `.venv/bin/python bench/footprint.py [--runs N]` (starts a private mosquitto).
Prints figures only; nothing is asserted (numbers depend on the board).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent.dev.broker import Mosquitto  # noqa: E402


def agent_config(tmp: Path, port: int) -> Path:
    """A minimal agent config: the private broker and one file output under `tmp`."""
    path = tmp / "agent.toml"
    path.write_text(f"""
[everest]
module_id = "session_cost_consumer"
[mqtt]
port = {port}
[status]
path = "{tmp}/status.json"
[state]
dir = "{tmp}/state"
[[output]]
type = "file"
path = "{tmp}/display.json"
""")
    return path


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> int:
    """Start the agent `--runs` times; print idle RSS and SIGTERM-to-exit time of each."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--settle", type=float, default=1.5, help="seconds before measuring")
    args = parser.parse_args()
    with Mosquitto() as broker, tempfile.TemporaryDirectory() as tmp:
        config = agent_config(Path(tmp), broker.port)
        for run in range(args.runs):
            proc = subprocess.Popen([sys.executable, "-m", "agent", "run", "--config",
                                     str(config)], stderr=subprocess.DEVNULL, cwd=REPO)
            time.sleep(args.settle)
            rss = _rss_kb(proc.pid)
            start = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=10)
            print(f"run {run}: idle RSS {rss / 1024:.1f} MiB, SIGTERM to exit "
                  f"{(time.monotonic() - start) * 1000:.0f} ms, exit status {code}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
