"""`cost-agent demo`: private mosquitto + simulated EVerest + the agent on a console display."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import tempfile
from pathlib import Path

from agent.dev.broker import Mosquitto
from agent.dev.pty import PtyTap
from agent.dev.simulator import Simulator
from agent.process.runtime import Agent
from agent.settings.config import Config, parse

log = logging.getLogger(__name__)

DEMO_CONFIG = """
[everest]
module_id = "session_cost_consumer"
[mqtt]
host = "127.0.0.1"
port = {port}
[watchdog]
communication_check_interval_s = 2.0
heartbeat_timeout_s = 3.0
[display]
languages = ["en"]
tariff_hold_s = 60
finished_hold_s = 120
[status]
path = "{tmp}/status.json"
interval_s = 5.0
[state]
dir = "{tmp}/state"
[[output]]
type = "console"
width = 30
lines = 5
[[output]]
type = "file"
path = "{tmp}/display.json"
"""


def demo_config(port: int, tmp: str, serial_device: str | None = None) -> Config:
    """The demo's configuration; optionally also a line-protocol serial display on a pty."""
    text = DEMO_CONFIG.format(port=port, tmp=tmp)
    if serial_device:
        text += (f'[[output]]\ntype = "serial"\ndevice = "{serial_device}"\n'
                 'protocol = "line"\nwidth = 20\nlines = 4\nencoding = "ascii"\n')
    return parse(text)


def _show_serial(data: bytes) -> None:
    for line in data.decode("latin-1").splitlines():
        print(f"serial> {line.encode('unicode_escape').decode('ascii')}", file=sys.stderr)


async def run_demo(step_s: float = 2.0, serial_pty: bool = False, evses: int = 0,
                   capture: str | None = None) -> int:
    """Play one session end to end (about 30 s at the default step); 0 when all went well.

    With `evses` > 0: a station with that many connectors instead (see run_station).
    """
    if evses > 0:
        from agent.dev.station_demo import run_station

        return await run_station(evses, step_s, capture)
    with contextlib.ExitStack() as stack:
        tap = None
        if serial_pty:
            tap = PtyTap()
            stack.callback(tap.close)
            tap.watch(_show_serial)
            print(f"demo: serial display (line protocol, 20x4) on {tap.path}; "
                  "what it receives is shown as 'serial>' lines", file=sys.stderr)
        return await _play(step_s, tap.path if tap else None)


async def _play(step_s: float, serial_device: str | None) -> int:
    with Mosquitto() as broker, tempfile.TemporaryDirectory(prefix="cost-agent-demo-") as tmp:
        config = demo_config(broker.port, tmp, serial_device)
        agent = Agent(config)
        agent.install_signal_handlers()
        sim = Simulator("127.0.0.1", broker.port, config.everest.module_id,
                        check_timeout_s=5.0)
        agent_task = asyncio.create_task(agent.run(), name="agent")
        beats: asyncio.Task[None] | None = None
        try:
            await sim.connect()
            beats = asyncio.create_task(sim.heartbeats(), name="sim-heartbeats")
            play = asyncio.create_task(sim.play(step_s), name="sim-play")
            await asyncio.wait([play, agent_task], return_when=asyncio.FIRST_COMPLETED)
            if not play.done():  # the agent was stopped by a signal
                play.cancel()
                return 130
            await asyncio.sleep(min(step_s, 2.0))
        finally:
            agent.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await agent_task
            await asyncio.sleep(0.2)  # a `false` (which must not come) would have arrived
            if beats is not None:
                beats.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beats
            await sim.close()
        ok, text = sim.verdict()
        view = agent.station.displays[0].view
        shown = view.screen if view else None
        # stop_check_on_exit is off: a stop must leave EVerest's supervision armed.
        silent = sim.watch.received_false == 0
        said = "no false at stop" if silent else "UNEXPECTED false at stop"
        log.info("%s; %s; last screen %s", text, said, shown)
        print(f"demo: {text}; {said}; "
              f"display ended on '{shown}' (status file was {Path(tmp) / 'status.json'})")
        return 0 if ok and silent and shown == "finished" else 1
