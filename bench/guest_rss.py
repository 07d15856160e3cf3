"""Resident memory of a program's own (guest) mappings when it runs under qemu-user.

Under qemu-user (binfmt_misc, or `qemu-aarch64 -L ROOTFS`) the process running the ARM code is
the emulator: its VmRSS also counts qemu itself, TCG's translated-code buffer and qemu's heap,
so it says little about what the program would use on a board. The guest's own share:

1. qemu shows the guest its own `/proc/self/maps` in guest addresses, listing only the guest's
   mappings. `launch` (below) runs a program with a thread that saves that file after a delay.
2. `/proc/PID/smaps` read by any *other* process is the host kernel's view of the same process
   (qemu intercepts only the process's own /proc files): host addresses and Rss per mapping.
3. host address = guest address + guest_base. guest_base is found by matching file-backed
   mappings of the two views (same device, inode, file offset and size); it is 0 natively and
   usually for a 64-bit guest, non-zero for a 32-bit guest (qemu reserves 4 GiB for it).
4. Guest RSS = sum of the host Rss of every host mapping inside a shifted guest range
   (pro rata where one straddles a range boundary).

Natively both views are the same process's own, so guest RSS = the sum of its smaps Rss
(about VmRSS): the method is checked against that in tests/test_guest_rss.py.

    python bench/guest_rss.py launch --maps-out FILE [--after S] -- -m agent run --config X
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Mapping:
    """One line of /proc/PID/maps."""

    start: int
    end: int
    offset: int
    dev: str
    inode: int
    path: str


def _mapping(line: str) -> Mapping | None:
    parts = line.split(maxsplit=5)
    if len(parts) < 5 or "-" not in parts[0]:
        return None
    start, end = (int(x, 16) for x in parts[0].split("-"))
    return Mapping(start, end, int(parts[2], 16), parts[3], int(parts[4]),
                   parts[5].strip() if len(parts) > 5 else "")


def parse_maps(text: str) -> list[Mapping]:
    """The mappings of a /proc/PID/maps text."""
    return [m for line in text.splitlines() if (m := _mapping(line)) is not None]


def parse_smaps(text: str) -> list[tuple[Mapping, int]]:
    """(mapping, Rss in kB) for each entry of a /proc/PID/smaps text."""
    entries: list[tuple[Mapping, int]] = []
    for line in text.splitlines():
        m = _mapping(line)
        if m is not None:
            entries.append((m, 0))
        elif line.startswith("Rss:") and entries:
            entries[-1] = (entries[-1][0], int(line.split()[1]))
    return entries


def guest_base(guest: Sequence[Mapping], host: Sequence[Mapping]) -> int:
    """host address - guest address, from file mappings both views have (0 when none match)."""
    by_key: dict[tuple[str, int, int, int], list[int]] = {}
    for h in host:
        if h.inode:
            by_key.setdefault((h.dev, h.inode, h.offset, h.end - h.start), []).append(h.start)
    votes: Counter[int] = Counter()
    for g in guest:
        if g.inode:
            for start in by_key.get((g.dev, g.inode, g.offset, g.end - g.start), []):
                votes[start - g.start] += 1
    return votes.most_common(1)[0][0] if votes else 0


def guest_rss_kb(guest_maps: str, host_smaps: str) -> int:
    """Host-resident kB within the guest's mappings (see the module doc)."""
    guest = parse_maps(guest_maps)
    host = parse_smaps(host_smaps)
    base = guest_base(guest, [m for m, _ in host])
    ranges = sorted((g.start + base, g.end + base) for g in guest)
    total = 0.0
    for m, rss in host:
        if not rss:
            continue
        inside = sum(max(0, min(m.end, hi) - max(m.start, lo)) for lo, hi in ranges
                     if lo < m.end and hi > m.start)
        total += rss * min(1.0, inside / (m.end - m.start))
    return round(total)


def measure(pid: int, maps_file: Path, timeout: float = 30.0) -> int:
    """Guest RSS (kB) of `pid`, once the process has written its maps to `maps_file`."""
    deadline = time.monotonic() + timeout
    while not maps_file.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{maps_file} not written within {timeout:.0f} s")
        time.sleep(0.05)
    smaps = Path(f"/proc/{pid}/smaps").read_text()
    return guest_rss_kb(maps_file.read_text(), smaps)


def under_qemu_user() -> bool:
    """Whether this process is emulated: its own maps (qemu's view) differ from smaps' set."""
    own = {(m.start, m.end) for m in parse_maps(Path("/proc/self/maps").read_text())}
    # qemu answers /proc/self/... itself; by pid another process's view is the host's
    host = {(m.start, m.end) for m, _ in parse_smaps(
        Path(f"/proc/{os.getpid()}/smaps").read_text())}
    return own != host


def _save_maps_later(path: Path, after: float) -> None:
    time.sleep(after)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(Path("/proc/self/maps").read_text())  # qemu's guest view when emulated
    tmp.rename(path)


def launch(argv: Sequence[str]) -> None:
    """`launch --maps-out FILE [--after S] -- (-m MODULE | -c CODE | SCRIPT) ARGS...`."""
    parser = argparse.ArgumentParser(prog="guest_rss.py launch")
    parser.add_argument("--maps-out", type=Path, required=True)
    parser.add_argument("--after", type=float, default=1.5, help="seconds before saving maps")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("nothing to run")
    threading.Thread(target=_save_maps_later, args=(args.maps_out, args.after), daemon=True,
                     name="guest-rss-maps").start()
    if command[0] in ("-m", "-c"):
        sys.path[0] = os.getcwd()  # as `python -m` / `python -c` would have it
    if command[0] == "-m":
        sys.argv = [command[1], *command[2:]]
        runpy.run_module(command[1], run_name="__main__", alter_sys=True)
    elif command[0] == "-c":
        sys.argv = ["-c", *command[2:]]
        exec(compile(command[1], "<string>", "exec"), {"__name__": "__main__"})
    else:
        sys.argv = list(command)
        runpy.run_path(command[0], run_name="__main__")


if __name__ == "__main__":
    if sys.argv[1:2] != ["launch"]:
        sys.exit(__doc__)
    launch(sys.argv[2:])
