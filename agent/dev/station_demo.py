"""`cost-agent demo --evses N`: a station with N connectors on EVerest's EVSE manager API.

Each connector's display is shown side by side: live kWh and power, the `≈` total rising between
the backend's updates (every 10 simulated seconds), the tariff at authorization, one session
ending without a final cost (`not final`) and a receipt's QR code that a phone can scan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from agent.dev.board import board, show
from agent.dev.broker import Mosquitto, free_port
from agent.dev.simulator import Simulator
from agent.dev.station import play_station, station_schedule
from agent.model.view import View
from agent.process.runtime import Agent
from agent.settings.config import Config, parse

log = logging.getLogger(__name__)

CHARGE_TICKS = 40
TICK_S = 0.25
WEB_PORT = 8080
# How long the round's end may take to reach every display (its final cost wait is 2 s).
FINAL_VIEWS_WAIT_S = 30.0
CAPTURE_TAIL_S = 2.0
DISPLAY_MODULE = "display_message"
# What the CSMS shows on every display, in turn with the agent's own screen (OCPP
# SetDisplayMessage through EVerest's display_message API).
NOTICE = {"id": 1, "priority": "NormalCycle",
          "message": {"content": "Solar power from the roof today", "language": "en"}}


def station_config(port: int, tmp: str, evses: int, web_port: int | None = None) -> Config:
    """The demo station: N [[evse]] modules, a file output per EVSE (the board shows them),
    and the web display on `web_port`."""
    parts = [f"""
[mqtt]
port = {port}
[display]
languages = ["en"]
final_cost_wait_s = 2
finished_hold_s = 120
[status]
path = "{tmp}/status.json"
interval_s = 1.0
[state]
dir = "{tmp}/state"
[display_messages]
module_id = "{DISPLAY_MODULE}"
cycle_s = 4
"""]
    for i in range(1, evses + 1):
        parts.append(f'[[evse]]\nid = {i}\nmodule_id = "evse_manager_consumer_{i}"\n'
                     'payment_url = "https://pay.example.com/{evse_id}"\n'
                     f'[[output]]\ntype = "file"\npath = "{tmp}/display{i}.json"\nevse = {i}\n')
    if web_port is not None:
        parts.append(f'[[output]]\ntype = "web"\nlisten = "127.0.0.1:{web_port}"\n'
                     'title = "cost-agent demo"\nlanguages = ["en", "de"]\n')
    return parse("".join(parts))


@contextlib.contextmanager
def _capturing(port: int, path: str) -> Iterator[None]:
    """mosquitto_sub writing every everest_api message to `path` (-F %j) while inside."""
    program = shutil.which("mosquitto_sub")
    if program is None:
        raise SystemExit("demo --capture: mosquitto_sub not found (Debian: mosquitto-clients)")
    with open(path, "wb") as out:
        proc = subprocess.Popen([program, "-h", "127.0.0.1", "-p", str(port), "-t",
                                 "everest_api/#", "-F", "%j"], stdout=out,
                                stdin=subprocess.DEVNULL)
        try:
            time.sleep(0.3)  # subscribed before the station's first message
            yield
        finally:
            proc.terminate()
            proc.wait(timeout=5)


def web_port() -> int | None:
    """8080 when free, else any free port; None without the web extra (h11, segno)."""
    try:
        import h11  # noqa: F401
        import segno  # noqa: F401
    except ImportError:
        return None
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", WEB_PORT))
        except OSError:
            return free_port()
    return WEB_PORT


async def run_station(evses: int, step_s: float = 2.0, capture: str | None = None) -> int:
    """Play one staggered round of sessions; 0 when every display ended on its receipt.
    With `capture`: EVerest's side of the broker traffic written there by mosquitto_sub -F %j,
    as docs/replay.md says to capture on a station (`cost-agent replay` reads it)."""
    tick_s = TICK_S * step_s / 2.0
    with (Mosquitto() as broker,
          tempfile.TemporaryDirectory(prefix="cost-agent-demo-") as tmp,
          contextlib.ExitStack() as stack):
        if capture is not None:
            stack.enter_context(_capturing(broker.port, capture))
        port = web_port()
        config = station_config(broker.port, tmp, evses, port)
        if port is not None:
            print(f"demo: web display on http://127.0.0.1:{port}/ (one connector: "
                  f"http://127.0.0.1:{port}/evse/1)", flush=True)
        agent = Agent(config)
        agent.install_signal_handlers()
        sim = Simulator("127.0.0.1", broker.port, config.everest.module_id, check_timeout_s=5.0,
                        display_module=DISPLAY_MODULE)
        steps = station_schedule(evses, datetime.now(UTC), sessions=1,
                                 charge_ticks=CHARGE_TICKS)
        agent_task = asyncio.create_task(agent.run(), name="agent")
        tasks: list[asyncio.Task[None]] = []
        views: list[View | None] = []
        try:
            await sim.connect()
            tasks = [asyncio.create_task(sim.heartbeats(), name="sim-heartbeats"),
                     asyncio.create_task(show(agent.station.displays), name="board")]
            # The CSMS's notice, once the agent listens (its first communication check).
            for _ in range(100):
                if sim.watch.received_true:
                    break
                await asyncio.sleep(0.05)
            sim.set_display_message(NOTICE)
            play = asyncio.create_task(
                play_station(sim.publish_station, steps, tick_s), name="sim-station")
            await asyncio.wait([play, agent_task], return_when=asyncio.FIRST_COMPLETED)
            if not play.done():
                play.cancel()
                return 130
            # Until every display shows its receipt (the last session's final cost wait runs
            # out first), however slow the machine; at most FINAL_VIEWS_WAIT_S.
            for _ in range(round(FINAL_VIEWS_WAIT_S / 0.1)):
                if agent_task.done() or all(d.view is not None and d.view.screen == "finished"
                                            for d in agent.station.displays):
                    break
                await asyncio.sleep(0.1)
            views = [d.view for d in agent.station.displays]
            print(board(views, 26, 5), end="")
            if capture is not None:
                # A few more heartbeats: a replay plays out to the capture's last message, so
                # the last receipt's wait is seen running out.
                await asyncio.sleep(CAPTURE_TAIL_S)
        finally:
            agent.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await agent_task
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await sim.close()
        ok, text = sim.verdict()
        finals = [v.final for v in views if v is not None and v.screen == "finished"]
        ended = len(finals) == evses and finals.count(False) == 1
        accepted = b'{"status":"Accepted"}' in sim.display_replies
        print(f"demo: {text}; {evses} connectors, {finals.count(True)} final receipt(s), "
              f"{finals.count(False)} without final cost; the CSMS's display message "
              f"{'accepted' if accepted else 'NOT accepted'}")
        return 0 if ok and ended and accepted else 1
