"""Footprint and stop latency of the real agent process: RSS when idle, SIGTERM to exit.

Usage: `.venv/bin/python bench/footprint.py [--runs N] [--guest-rss]` (starts a private
mosquitto). Prints figures only; nothing is asserted (numbers depend on the board).
`--guest-rss`: also the RSS of the agent's own mappings, the figure to read under qemu-user,
where VmRSS includes the emulator (method: bench/guest_rss.py).
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
from bench import guest_rss  # noqa: E402


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
    parser.add_argument("--guest-rss", action="store_true",
                        help="also the RSS of the agent's own mappings (for qemu-user)")
    args = parser.parse_args()
    if args.guest_rss:
        print(f"guest RSS: {'under qemu-user' if guest_rss.under_qemu_user() else 'native'}")
    with Mosquitto() as broker, tempfile.TemporaryDirectory() as tmp:
        config = agent_config(Path(tmp), broker.port)
        for run in range(args.runs):
            command = ["-m", "agent", "run", "--config", str(config)]
            maps = Path(tmp) / f"maps.{run}"
            if args.guest_rss:
                command = [str(REPO / "bench" / "guest_rss.py"), "launch", "--maps-out",
                           str(maps), "--after", str(args.settle), "--", *command]
            proc = subprocess.Popen([sys.executable, *command], stderr=subprocess.DEVNULL,
                                    cwd=REPO)
            time.sleep(args.settle)
            guest = f", guest RSS {guest_rss.measure(proc.pid, maps) / 1024:.1f} MiB" if (
                args.guest_rss) else ""
            rss = _rss_kb(proc.pid)
            start = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=10)
            print(f"run {run}: idle RSS {rss / 1024:.1f} MiB{guest}, SIGTERM to exit "
                  f"{(time.monotonic() - start) * 1000:.0f} ms, exit status {code}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
