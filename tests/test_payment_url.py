"""The ad-hoc payment QR per connector (AFIR): `[[evse]] payment_url` / `display.payment_url`."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.dev.broker import Mosquitto
from agent.everest.evse_manager import EvseId
from agent.model.display import DisplayModel
from agent.model.payment import path_segment, payment_url
from agent.model.state import DisplayConfig, LinkChanged, State
from agent.outputs.console import render
from tests.harness import REPO, AgentProcess, Everest, wait_until
from tests.test_evse_integration import MODULES, Station, config, view

TEMPLATE = "https://pay.example/{evse_id}?c={evse}"


@pytest.mark.parametrize(("evse_id", "evse", "url"), [
    ("DE*PNX*E12345*1", 1, "https://pay.example/DE*PNX*E12345*1?c=1"),  # as it is (RFC 3986)
    ("DE PNX/E1", 2, "https://pay.example/DE%20PNX%2FE1?c=2"),  # only what a path cannot hold
    ("DE*ÄB*1", 3, "https://pay.example/DE*%C3%84B*1?c=3"),
    (None, 1, None),  # EVerest has not said the EVSE id yet: no URL rather than a wrong one
])
def test_the_template_is_filled_with_the_evse_id_percent_encoded_only_where_needed(
        evse_id: str | None, evse: int, url: str | None) -> None:
    assert payment_url(TEMPLATE, evse_id, evse) == url


@given(st.text(st.characters(blacklist_categories=["Cs"])))
def test_an_evse_id_is_encoded_as_the_standard_library_encodes_a_path_segment(text: str) -> None:
    # RFC 3986 pchar: unreserved, sub-delims, ":" and "@" stay; all else as %XX of its UTF-8.
    assert path_segment(text) == quote(text, safe="!$&'()*+,;=:@")


def test_each_connector_shows_its_own_url_on_its_price_screen_only() -> None:
    config = DisplayConfig()
    views = []
    for evse in (1, 2):
        model = DisplayModel(config, evse, TEMPLATE)
        state = model.update(State(), LinkChanged(up=True), 0.0)
        state = model.update(state, EvseId(f"DE*PNX*E1*{evse}"), 0.0)
        views.append(model.view(state))
    assert [v.payment_url for v in views] == ["https://pay.example/DE*PNX*E1*1?c=1",
                                              "https://pay.example/DE*PNX*E1*2?c=2"]
    assert "QR https://pay.example/DE*PNX*E1*2?c=2" in render(views[1], 40, 6, qr="off")
    unavailable = DisplayModel(config, 1, TEMPLATE).view(State(evse_id="DE*PNX*E1*1"))
    assert unavailable.screen == "unavailable" and unavailable.payment_url is None


@pytest.mark.parametrize(("table", "key"), [
    ('[display]\npayment_url = "https://p/{station}"\n', "display"),
    ('[[evse]]\nid = 1\nmodule_id = "m1"\npayment_url = "https://p/{evse_id"\n', "evse"),
])
def test_a_template_with_an_unknown_placeholder_fails_at_start(table: str, key: str,
                                                               tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(table)
    result = subprocess.run([sys.executable, "-m", "agent", "check-config", str(path)],
                            capture_output=True, text=True, cwd=REPO, timeout=60, check=False)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1
    assert key in lines[0] and "payment_url" in lines[0]


def test_payment_urls_per_evse_through_the_real_process(broker: Mosquitto,
                                                        tmp_path: Path) -> None:
    path = config(tmp_path, broker.port)
    text = path.read_text()
    line = 'payment_url = "https://pay.example/{evse_id}"\n'
    for module in MODULES.values():
        text = text.replace(f'module_id = "{module}"\n', f'module_id = "{module}"\n{line}')
    path.write_text(text)

    async def scenario() -> None:
        sim = await Everest(broker.port).connect()
        station = Station(sim)
        beats = asyncio.create_task(station.heartbeats())
        agent = await AgentProcess(path).start()
        try:
            await wait_until(lambda: view(tmp_path, 2).get("link") == "up", what="EVSE 2 up")
            for i in MODULES:
                station.evse(i, "evse_id", f"DE*PNX*E7*{i}")
            for i in MODULES:
                def url(i: int = i) -> str | None:
                    shown: str | None = view(tmp_path, i).get("payment_url")
                    return shown
                assert await wait_until(url, what=f"EVSE {i}'s payment URL") == (
                    f"https://pay.example/DE*PNX*E7*{i}")
            assert json.loads((tmp_path / "display1.json").read_text())["screen"] == "price"
            assert await agent.terminate() == 0
        finally:
            beats.cancel()
            await agent.kill()
            await sim.close()
    asyncio.run(scenario())
