"""Broker SIGKILLed and restarted N times under a running agent: gaps between `true` checks.

Usage: `.venv/bin/python bench/broker_restarts.py [--restarts 50] [--down-min 0.5]
[--down-max 2.0]`. EVerest raises CommunicationFault after 5 s without a check; the agent's
target is that a broker down for up to 2 s never leaves a gap of 4 s or more.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent.dev.broker import Mosquitto  # noqa: E402
from agent.dev.restarts import CheckWatcher, restart_gaps  # noqa: E402

MODULE = "session_cost_consumer"


async def _measure(restarts: int, down: tuple[float, float], tmp: Path) -> list[float]:
    with Mosquitto() as broker:
        config = tmp / "agent.toml"
        config.write_text(f"[mqtt]\nport = {broker.port}\n[status]\npath = \"\"\n"
                          f"[state]\ndir = \"\"\n")
        agent = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent", "run", "--config", str(config),
            stderr=subprocess.DEVNULL, cwd=REPO)
        watcher = CheckWatcher(broker.port,
                               f"everest_api/1/session_cost_consumer/{MODULE}/m2e/"
                               "communication_check")
        task = asyncio.create_task(watcher.run())
        try:
            return await restart_gaps(broker, watcher, restarts, down)
        finally:
            task.cancel()
            agent.terminate()
            await asyncio.wait_for(agent.wait(), 10)


def main() -> int:
    """Run the restarts and print the gap figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--restarts", type=int, default=50)
    parser.add_argument("--down-min", type=float, default=0.5)
    parser.add_argument("--down-max", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        gaps = asyncio.run(_measure(args.restarts, (args.down_min, args.down_max), Path(tmp)))
    over = sum(g >= 4.0 for g in gaps)
    print(f"{len(gaps)} restarts, broker down {args.down_min}-{args.down_max} s: largest gap "
          f"between two true checks max {max(gaps):.2f} s, median {statistics.median(gaps):.2f} s,"
          f" {over} of {len(gaps)} at 4 s or more")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
