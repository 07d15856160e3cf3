"""The product's message path through the station core: µs per session_cost from its bytes to
the encoded view (Station.receive: check, count, decode, route, update, render, stamp; then
encode_view), against json.loads of the same bytes in the same run. bench/decode.py's `full`
column is the model's part alone; this adds what the core does around it.

    .venv/bin/python bench/core_path.py [--messages N]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.core.station import Station
from agent.model.view import encode_view
from agent.settings.config import parse
from bench import payloads

RATE = 28000.0  # messages a second: the simulated clocks advance at this rate


def measure(messages: int) -> tuple[float, float]:
    """(core µs, json.loads µs) per message, medians of 5 rounds."""
    config = parse('[state]\ndir = ""\n[status]\npath = ""\n')
    station = Station(config, 0.0)
    station.restore({}, "", None, 0.0, 1.8e9)
    station.connection(True, 0.0, 1.8e9)
    topic = config.everest.base() + "e2m/session_cost"
    costs = [payloads.session_cost(total=100000 + 37 * i, energy_wh=20000 + i)
             for i in range(256)]
    core, loads, count = [], [], 0
    gc.disable()  # as timeit and bench/decode.py: the collector's pauses are not the path's
    for _ in range(5):
        start = time.perf_counter()
        for i in range(messages):
            count += 1
            fx = station.receive(topic, costs[i % 256], count / RATE, 1.8e9 + count / RATE)
            for _, view in fx.views:
                encode_view(view)
        core.append((time.perf_counter() - start) / messages * 1e6)
        start = time.perf_counter()
        for i in range(messages):
            json.loads(costs[i % 256])
        loads.append((time.perf_counter() - start) / messages * 1e6)
    gc.enable()
    return statistics.median(core), statistics.median(loads)


def main(argv: list[str] | None = None) -> int:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20000)
    args = parser.parse_args(argv)
    core, loads = measure(args.messages)
    print(f"session_cost through the core: {core:.2f} µs; json.loads {loads:.2f} µs; "
          f"{core / loads:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
