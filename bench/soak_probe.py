"""What the agent's own thread did while a soak fed it (`bench/footprint.py --soak N --probe`).

Loaded into the agent process before the agent itself: it wraps the session cost decoder, so
that every decode records the wall clock and the main thread's CPU clock, and hooks the garbage
collector's start and stop. At exit (SIGTERM is a clean stop) it writes the gaps between decodes
and the collections as JSON to `$SOAK_PROBE_OUT`. A gap in which the thread's CPU clock
advanced as much as the wall clock was work (a collection, the status or output writes); one in
which it did not was time the thread did not run: waiting on the run queue for a CPU (the
thread's own schedstat, read at each decode: the machine), or else blocked (on the GIL, or
with nothing to read).
"""

from __future__ import annotations

import atexit
import gc
import heapq
import json
import os
import time
from array import array
from typing import Any

GAPS = 10  # the longest gaps reported


def install(out: str) -> None:
    """Wrap the decoder and hook the collector; write the findings to `out` at exit."""
    import agent.everest.session_cost as api

    wall, cpu, queued = array("d"), array("d"), array("q")
    # The main thread's own schedstat, read at each decode (one pread, a few microseconds);
    # without it (a kernel without schedstat) the waits read as 0.
    try:
        schedstat = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
    except OSError:
        schedstat = os.open("/dev/zero", os.O_RDONLY)
    collections: list[tuple[int, float, float]] = []  # generation, start, seconds
    started = [0.0]
    real = api.decode
    perf, thread_cpu = time.perf_counter, time.thread_time

    def decode(topic: str, payload: bytes) -> api.Message:
        wall.append(perf())
        cpu.append(thread_cpu())
        fields = os.pread(schedstat, 64, 0).split()
        queued.append(int(fields[1]) if len(fields) > 1 else 0)
        return real(topic, payload)

    def collected(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = perf()
        else:
            collections.append((info["generation"], started[0], perf() - started[0]))

    api.decode = decode  # before agent.core.inbox imports the name
    gc.callbacks.append(collected)
    waited = [_schedstat_wait()]
    atexit.register(lambda: _write(out, wall, cpu, queued, collections, waited[0]))


def _schedstat_wait() -> float:
    """Seconds the process's threads have waited on a run queue so far."""
    total = 0
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/schedstat") as file:
                total += int(file.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


def _write(out: str, wall: array[float], cpu: array[float], queued: array[int],
           collections: list[tuple[int, float, float]], waited_before: float) -> None:
    gaps = heapq.nlargest(GAPS, ((wall[i] - wall[i - 1], cpu[i] - cpu[i - 1], wall[i - 1],
                                  (queued[i] - queued[i - 1]) / 1e9)
                                 for i in range(1, len(wall))))
    report = {
        "decodes": len(wall),
        "seconds": wall[-1] - wall[0] if wall else 0.0,
        "cpu_seconds": cpu[-1] - cpu[0] if cpu else 0.0,
        "run_queue_wait_s": _schedstat_wait() - waited_before,
        "gaps": [{"wall_ms": w * 1000, "cpu_ms": c * 1000, "run_queue_ms": q * 1000,
                  "collections_ms": sum(s for _, at, s in collections if t <= at <= t + w) * 1000}
                 for w, c, t, q in gaps],
        "collections": {str(g): {"count": sum(1 for gen, _, _ in collections if gen == g),
                                 "longest_ms": max((s for gen, _, s in collections if gen == g),
                                                   default=0.0) * 1000}
                        for g in (0, 1, 2)},
    }
    with open(out, "w") as file:
        json.dump(report, file)


PRELUDE = ("import os, sys; sys.path.insert(0, os.environ['SOAK_PROBE_PATH']); "
           "import soak_probe; soak_probe.install(os.environ['SOAK_PROBE_OUT']); ")
