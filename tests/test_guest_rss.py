"""bench/guest_rss.py: the guest's RSS from its own maps and the host's smaps.

Synthetic views check the arithmetic (guest_base, pro rata overlap); a real process checks the
method end to end: natively (both views the same) the guest RSS is the process's whole RSS, and
under qemu-user (make test-arm) it is the guest's share of the emulator process.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from bench import guest_rss

ROOT = Path(__file__).resolve().parent.parent
BASE = 0x7F00_0000_0000

GUEST_MAPS = """\
00400000-00402000 r-xp 00000000 08:01 1234 /usr/bin/python3.11
00402000-00403000 rw-p 00002000 08:01 1234 /usr/bin/python3.11
10000000-10004000 rw-p 00000000 00:00 0 [heap]
"""


def host_smaps(base: int) -> str:
    def entry(start: int, end: int, perms: str, offset: int, inode: int, path: str,
              rss_kb: int) -> str:
        return (f"{start:x}-{end:x} {perms} {offset:08x} 08:01 {inode} {path}\n"
                f"Size: {(end - start) // 1024} kB\nRss: {rss_kb} kB\nPss: {rss_kb} kB\n")
    return "".join([
        # the guest's mappings, shifted by base
        entry(base + 0x400000, base + 0x402000, "r-xp", 0, 1234, "/usr/bin/python3.11", 8),
        entry(base + 0x402000, base + 0x403000, "rw-p", 0x2000, 1234, "/usr/bin/python3.11", 4),
        # the heap range holds half of this host mapping (it reaches past the guest range)
        entry(base + 0x10000000, base + 0x10008000, "rw-p", 0, 0, "", 32),
        # the emulator's own: not counted
        entry(0x5555_0000_0000, 0x5555_0100_0000, "r-xp", 0, 999, "/usr/bin/qemu-aarch64", 900),
        entry(0x6000_0000_0000, 0x6000_4000_0000, "rwxp", 0, 0, "", 65536),
    ])


def test_parse_maps_and_smaps() -> None:
    maps = guest_rss.parse_maps(GUEST_MAPS)
    assert [(m.start, m.inode, m.path) for m in maps] == [
        (0x400000, 1234, "/usr/bin/python3.11"), (0x402000, 1234, "/usr/bin/python3.11"),
        (0x10000000, 0, "[heap]")]
    smaps = guest_rss.parse_smaps(host_smaps(0))
    assert [rss for _, rss in smaps] == [8, 4, 32, 900, 65536]


def test_guest_base_found_from_file_mappings() -> None:
    host = [m for m, _ in guest_rss.parse_smaps(host_smaps(BASE))]
    assert guest_rss.guest_base(guest_rss.parse_maps(GUEST_MAPS), host) == BASE
    assert guest_rss.guest_base(guest_rss.parse_maps(GUEST_MAPS),
                                [m for m, _ in guest_rss.parse_smaps(host_smaps(0))]) == 0


def test_guest_rss_counts_only_guest_ranges() -> None:
    for base in (0, BASE):
        # 8 + 4 + half of 32; the emulator's 900 kB and its code buffer are left out
        assert guest_rss.guest_rss_kb(GUEST_MAPS, host_smaps(base)) == 28


def test_guest_rss_of_a_real_process_via_launch(tmp_path: Path) -> None:
    maps = tmp_path / "maps"
    child = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "guest_rss.py"), "launch", "--maps-out",
         str(maps), "--after", "0.5", "--", "-c",
         "import time\nblob = bytearray(32 * 1024 * 1024)\ntime.sleep(60)"],
        cwd=ROOT)
    try:
        guest = guest_rss.measure(child.pid, maps, timeout=60)
        status = Path(f"/proc/{child.pid}/status").read_text()
        vm_rss = next(int(line.split()[1]) for line in status.splitlines()
                      if line.startswith("VmRSS:"))
    finally:
        child.kill()
        child.wait(timeout=10)
    # the 32 MiB the program touched are in its own mappings
    assert guest >= 32 * 1024
    # natively guest RSS is (about) the whole RSS; emulated, the emulator's part is left out
    assert guest <= vm_rss * 1.05
    if not guest_rss.under_qemu_user():
        assert guest >= vm_rss * 0.9


def test_under_qemu_user_tells_emulated_from_native() -> None:
    if os.environ.get("COST_AGENT_EXPECT_QEMU_USER") == "1":  # set by scripts/arm.sh
        assert guest_rss.under_qemu_user()
    elif platform.machine() == "x86_64":
        assert not guest_rss.under_qemu_user()
    else:
        pytest.skip("ARM code outside scripts/arm.sh: emulated or on a board, unknown here")
