"""`cost-agent status`: the running agent's status file as a summary for a person or a script."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, TextIO

# Exit codes: all well; stale or a link down; no status file to read.
OK, ATTENTION, NO_FILE = 0, 1, 2
# The agent rewrites the file every interval: older than this many intervals, it looks stopped.
STALE_INTERVALS = 3


def assess(doc: dict[str, Any], age_s: float) -> list[str]:
    """What needs attention in a status document `age_s` seconds old (empty: all well)."""
    problems = []
    interval = float(doc.get("interval_s") or 5)
    if age_s > STALE_INTERVALS * interval:
        problems.append(f"status file is {age_s:.0f} s old (written every {interval:g} s): "
                        "the agent looks stopped")
    if doc.get("link") == "down":
        problems.append("session cost API link down")
    for evse, part in sorted((doc.get("evse") or {}).items()):
        if part.get("link") == "down":
            problems.append(f"EVSE {evse} link down")
    desk = doc.get("display_messages")
    if desk and desk.get("link") == "down":
        problems.append("display_message API link down")
    return problems


def _age(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds:.1f} s ago"


def _rejected(counts: dict[str, int]) -> str:
    bad = {topic: n for topic, n in sorted(counts.items()) if n}
    return ", ".join(f"{topic} {n}" for topic, n in bad.items()) or "none"


def _duration(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 86400}d {s % 86400 // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _api_line(label: str, part: dict[str, Any]) -> str:
    shown = (f"screen {part.get('screen')}, session {part.get('session_id') or '-'}, "
             if "screen" in part else "")  # the station-wide API of several EVSEs shows none
    return (f"  {label}: link {part.get('link')}, {shown}"
            f"last message {_age(part.get('last_message_age_s'))}, "
            f"rejected {_rejected(part.get('rejected') or {})}")


def summary(doc: dict[str, Any], age_s: float, problems: list[str]) -> str:
    """Human-readable lines: station, each EVSE, outputs, broker, problems."""
    broker = doc.get("broker") or {}
    lines = [f"cost-agent: {'OK' if not problems else 'ATTENTION'}",
             f"  uptime {_duration(float(doc.get('uptime_s') or 0))}, status written "
             f"{age_s:.1f} s ago, {doc.get('threads', '?')} threads",
             f"  broker {'connected' if broker.get('connected') else 'disconnected'}, "
             f"{broker.get('reconnects', 0)} reconnects"
             + (f", last error: {broker['last_error']}" if broker.get("last_error") else ""),
             _api_line("session cost API", doc)]
    lines.extend(_api_line(f"EVSE {evse} ({part.get('module_id')})", part)
                 for evse, part in sorted((doc.get("evse") or {}).items()))
    desk = doc.get("display_messages")
    if desk:
        lines.append(_api_line(f"display_message API ({desk.get('module_id')})", desk)
                     + f", {desk.get('messages', 0)} message(s) kept")
    for name, out in sorted((doc.get("outputs") or {}).items()):
        state = (f"failing ({out.get('failed', 0)} failures), last error: {out.get('last_error')}"
                 if out.get("failing") else f"healthy ({out.get('ok', 0)} shown)")
        lines.append(f"  output {name}: {state}")
    lines.extend(f"  ! {problem}" for problem in problems)
    return "\n".join(lines)


def report(path: str, as_json: bool = False, out: TextIO = sys.stdout,
           now: float | None = None) -> int:
    """Print the status of the agent whose status file is `path`; the exit code."""
    if not path:
        print("no status file configured (status.path is empty)", file=sys.stderr)
        return NO_FILE
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read())
            age_s = max(0.0, (time.time() if now is None else now) - os.fstat(f.fileno()).st_mtime)
    except FileNotFoundError:
        print(f"{path}: no status file (is the agent running?)", file=sys.stderr)
        return NO_FILE
    except (OSError, ValueError) as exc:
        # Written atomically, so unreadable means wrong path or permissions, not a torn write.
        print(f"{path}: {exc}", file=sys.stderr)
        return NO_FILE
    problems = assess(doc, age_s)
    if as_json:
        json.dump({"ok": not problems, "problems": problems, "age_s": round(age_s, 3),
                   "status": doc}, out)
        out.write("\n")
    else:
        print(summary(doc, age_s, problems), file=out)
    return ATTENTION if problems else OK
