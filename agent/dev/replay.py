"""`cost-agent replay CAPTURE --config PATH [--json] [--evse N]`: what each display showed.

A capture of a station's broker traffic goes through the same station core the agent runs
(agent.core.station), on a simulated clock that follows the capture's timestamps: heartbeats
that stop, the final cost wait, the hold times and the display messages' windows play out as
they did. Each display's screen is printed every time it changed: the console output's frame
(or, with --json, one JSON line per view with its time). Two runs print the same bytes.

The capture is what `mosquitto_sub -v -t 'everest_api/#' -F %j` writes (one JSON object a
line: `tst`, `topic`, `payload` as a string), or `-F '%U %t %x'` lines (Unix time, topic,
payload in hex) for binary-safe captures. The agent is taken to be connected from the first
line on. A bad line is reported with its number and skipped; the count comes at the end.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TextIO

import msgspec

from agent.core.counters import wall_clock_text
from agent.core.effects import Effects
from agent.core.station import Station
from agent.outputs.console import render
from agent.settings.config import Config

# The simulated monotonic clock starts here (any value: only differences matter).
START = 1000.0


class Record(msgspec.Struct):
    """One message of the capture: its Unix time, topic and payload."""

    wall: float
    topic: str
    payload: bytes


class BadLine(Exception):
    """A capture line that is neither format."""


def parse_line(line: str) -> Record:
    """One capture line (`-F %j` JSON, or `-F '%U %t %x'`)."""
    text = line.strip()
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise BadLine(f"not JSON ({exc.args[0][:60]})") from None
        if not isinstance(doc, dict):
            raise BadLine("not a JSON object")
        tst, topic, payload = doc.get("tst"), doc.get("topic"), doc.get("payload")
        if not isinstance(tst, str | int | float) or not isinstance(topic, str):
            raise BadLine("no tst or topic")
        if not isinstance(payload, str):
            # mosquitto_sub -F %J embeds a JSON payload as JSON: take its text back.
            if payload is None:
                raise BadLine("no payload")
            payload = json.dumps(payload)
        return Record(_time(tst), topic, payload.encode())
    parts = text.split(" ")
    if len(parts) < 2:
        raise BadLine("neither a -F %j object nor '%U %t %x'")
    stamp, topic = parts[0], " ".join(parts[1:-1]) if len(parts) > 2 else parts[1]
    hexed = parts[-1] if len(parts) > 2 else ""
    try:
        return Record(float(stamp), topic, bytes.fromhex(hexed))
    except ValueError:
        raise BadLine("neither a -F %j object nor '%U %t %x'") from None


def _time(tst: str | int | float) -> float:
    if isinstance(tst, int | float):
        return float(tst)
    # mosquitto_sub 2.0 writes UTC as `2026-12-08T00:33:28.582169Z+0000`: the Z decides.
    text = tst.split("Z", 1)[0] + "+00:00" if "Z" in tst else tst
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        pass
    try:
        return float(tst)
    except ValueError:
        raise BadLine(f"tst {tst[:40]!r} is not a time") from None


def read_capture(lines: Iterable[str], errors: TextIO) -> tuple[list[Record], int]:
    """The capture's records in its order, and how many lines were bad (each reported)."""
    records, bad = [], 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(parse_line(line))
        except BadLine as exc:
            bad += 1
            print(f"replay: line {number}: {exc}; skipped", file=errors)
    return records, bad


class Replay:
    """Feeds a capture to a station core and collects each display's changes."""

    def __init__(self, config: Config, records: list[Record]) -> None:
        self.records = records
        self.wall0 = records[0].wall if records else 0.0
        self.core = Station(config, START)

        self._now = START

    def _clock(self, wall: float) -> float:
        # Never backwards: a wall clock step in the capture is not time running back.
        self._now = max(self._now, START + (wall - self.wall0))
        return self._now

    def changes(self) -> Iterator[tuple[float, Effects]]:
        """(wall time, effects) of every input, in order."""
        wall0 = self.wall0
        # The agent is connected when the capture starts: its first screens are those.
        start = self.core.restore({}, "", None, START, wall0)
        connected = self.core.connection(True, START, wall0)
        start.views = list({key: view for key, view in start.views + connected.views}.items())
        yield wall0, start
        for record in self.records:
            now = self._clock(record.wall)
            yield from self._ticks_until(now)
            yield record.wall, self.core.receive(record.topic, record.payload, now,
                                                       record.wall)

    def _ticks_until(self, now: float) -> Iterator[tuple[float, Effects]]:
        """Time passing up to `now`: each deadline on the way, as the agent's clock has it."""
        last = None
        while True:
            wall_now = self.wall0 + (now - START)
            deadline = self.core.next_deadline(now, wall_now)
            if deadline is None or deadline > now or (last is not None and deadline <= last):
                return
            last = deadline
            wall = self.wall0 + (deadline - START)
            yield wall, self.core.tick(deadline, wall)


def run(config: Config, capture: TextIO, out: TextIO, errors: TextIO, as_json: bool = False,
        evse: int | None = None) -> int:
    """Print each display's screens as they changed; 0, or 1 when no line could be read."""
    records, bad = read_capture(capture, errors)
    ids = [e.id for e in config.evse]
    if evse is not None and evse not in ids:
        print(f"replay: --evse {evse}: the config has no such [[evse]] (has "
              f"{', '.join(map(str, ids)) or 'none'})", file=errors)
        return 2
    shown = 0
    for wall, fx in Replay(config, records).changes():
        for key, view in fx.views:
            if evse is not None and key != evse:
                continue
            shown += 1
            stamp = wall_clock_text(wall)
            if as_json:
                out.write(json.dumps({"time": stamp, "evse": key,
                                      "view": msgspec.to_builtins(view)},
                                     ensure_ascii=False, sort_keys=True) + "\n")
            else:
                name = f"evse {key}" if key is not None else "station"
                out.write(f"{stamp} {name}\n" + render(view, width=26, lines=6, qr="off"))
    print(f"replay: {len(records)} messages, {bad} bad lines skipped, {shown} screens shown",
          file=errors)
    return 0 if records or not bad else 1


def main(config: Config, path: str, as_json: bool, evse: int | None) -> int:
    """The `replay` subcommand."""
    try:
        capture = sys.stdin if path == "-" else open(path, encoding="utf-8",  # noqa: SIM115
                                                     errors="replace")
    except OSError as exc:
        print(f"replay: {path}: {exc.strerror}", file=sys.stderr)
        return 2
    with capture:
        return run(config, capture, sys.stdout, sys.stderr, as_json, evse)
