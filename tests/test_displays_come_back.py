"""Displays that come back: the real agent process repaints a replugged serial display although
the view never changes (no broker, so the agent shows `unavailable` the whole time)."""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path

import pytest

from agent.dev.broker import free_port
from agent.dev.pty import PtyTap
from tests.harness import AgentProcess, wait_until

FF = b"\xff\xff\xff"


def plug(link: Path, tap: PtyTap) -> None:
    """Point the stable device path at this pty, atomically, as udev does on a replug."""
    tmp = link.with_suffix(".new")
    tmp.symlink_to(tap.path)
    tmp.replace(link)


def config(tmp: Path, link: Path, serial_keys: str) -> Path:
    path = tmp / "agent.toml"
    path.write_text(f"""
[mqtt]
port = {free_port()}
reconnect_max_s = 0.5
[status]
path = "{tmp}/status.json"
interval_s = 0.2
[state]
dir = "{tmp}/state"
[[output]]
type = "serial"
device = "{link}"
refresh_s = 0
{serial_keys}
""")
    return path


class Received:
    """Everything a tap's display has received so far."""

    def __init__(self, tap: PtyTap) -> None:
        self.tap = tap
        self.data = b""

    def has(self, expected: bytes) -> bool:
        self.data += self.tap.read()
        return expected in self.data


@pytest.mark.parametrize(("keys", "frame"), [
    ('template = "{screen}"', b"unavailable\r\n"),
    ('protocol = "nextion"\n[output.fields]\nscreen = "t0"\nlink = "t1"',
     b't0.txt="unavailable"' + FF + b't1.txt="down"' + FF),
], ids=["line", "nextion"])
def test_replugged_display_is_repainted_without_a_view_change(
        tmp_path: Path, keys: str, frame: bytes) -> None:
    async def scenario() -> None:
        link = tmp_path / "ttyDISPLAY"
        first, second, third = PtyTap(), PtyTap(), PtyTap()
        plug(link, first)
        agent = await AgentProcess(config(tmp_path, link, keys)).start()
        try:
            shown = Received(first)
            await wait_until(lambda: shown.has(frame), what="first paint")
            for tap in (second, third):  # replugged twice, the view still unchanged
                got = Received(tap)
                plug(link, tap)
                await wait_until(partial(got.has, frame), what="repaint after replug")
            assert "Traceback" not in agent.log()
            assert await agent.terminate() == 0
        finally:
            await agent.kill()
            for tap in (first, second, third):
                tap.close()
    asyncio.run(scenario())
