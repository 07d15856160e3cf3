"""The kiosk page in a real browser (Debian's chromium through selenium), against the real agent
process, broker and EVerest stand-in: every screen, updates without reload, the agent restarting,
a receipt QR a phone can read, no scrolling at the sizes of charger screens, and each connector's
own session on its own card."""

from __future__ import annotations

import asyncio
import json
from functools import partial
from pathlib import Path
from typing import Any

from agent.dev.broker import Mosquitto
from tests.browser import Browser, browser, qr_codes  # noqa: F401 (the fixture)
from tests.everest_events import session_event
from tests.harness import AgentProcess, read_json, wait_until
from tests.test_evse_integration import SESSIONS
from tests.web import both_up, running_cost, station, web_config

PAYMENT = 'payment_url = "https://pay.example.com/{evse_id}"'
SIZES = [(480, 272), (800, 480), (1024, 600), (1280, 800), (480, 800), (600, 1024)]


def shown(tmp: Path, evse: int) -> dict[str, Any]:
    """What the agent's file output says EVSE `evse` shows (the view the page draws)."""
    return read_json(tmp / f"display{evse}.json") or {}


def total_text(tmp: Path, evse: int) -> str:
    total = shown(tmp, evse).get("total")
    return str(total["text"]) if isinstance(total, dict) else ""


def total_of(tmp: Path, evse: int, value: int) -> str:
    """EVSE `evse`'s total text once the view's total is `value`."""
    total = shown(tmp, evse).get("total") or {}
    return total_text(tmp, evse) if total.get("value") == value else ""


def session_total(tmp: Path, evse: int) -> str:
    """EVSE `evse`'s total text once its own session is on its display."""
    return total_text(tmp, evse) if shown(tmp, evse).get("session_id") == SESSIONS[evse] else ""


def with_payment(path: Path) -> None:
    path.write_text(path.read_text().replace("[display]\n", f"[display]\n{PAYMENT}\n", 1))


def test_the_page_shows_every_screen(broker: Mosquitto, tmp_path: Path,
                                     browser: Browser) -> None:  # noqa: F811
    async def scenario() -> None:
        async with station(tmp_path, broker.port) as (sim, sta, _, port):
            browser.size(800, 480)
            await browser.open(f"http://127.0.0.1:{port}/")
            await browser.shows(1, "Price")
            await browser.shows(2, "Price")
            # Tariff: a driver authorized at EVSE 1.
            sim.send("tariff_message", {"identifier_id": "04AABBCC", "identifier_type": "IdToken",
                                        "messages": [{"content": "Welcome, 0.35 EUR/kWh"}]})
            sta.event(1, "SessionStarted", token="04AABBCC")
            await browser.shows(1, "Your tariff", "Welcome, 0.35 EUR/kWh")
            # Charging: total, live total, kWh, kW, duration.
            sta.info(1, 12345, 7400)
            sim.send("session_cost", {**running_cost(1, 4321), "charging_price": [
                {"category": "Energy", "price": {"currency": {"decimals": 3},
                                                 "value": {"value": 390}}}]})
            await wait_until(lambda: total_text(tmp_path, 1), what="EVSE 1's total")
            text = await browser.shows(1, "Charging", total_text(tmp_path, 1), "12.345 kWh",
                                       "7.4 kW", "0:01:05")
            assert "≈" in text  # the live total, extrapolated with the meter
            # Idle: the idle fee after the grace period.
            sim.send("session_cost", {**running_cost(1, 4400), "status": "Idle",
                                      "idle_price": {"grace_minutes": 30, "hour_price": {
                                          "currency": {"decimals": 2}, "value": {"value": 600}}}})
            await browser.shows(1, "Not charging", "Idle fee", "30 min")
            # Finished with a receipt QR code.
            sta.event(1, "TransactionFinished")
            sta.event(1, "SessionFinished")
            sim.send("session_cost", {**running_cost(1, 4500), "status": "Finished",
                                      "qr_code": "https://receipts.example/r/7F3A"})
            await browser.shows(1, "Thank you", "Scan for your receipt")
            assert "not received" not in await browser.text(1)
            # A session that ends without its final cost: said on screen.
            sta.event(2, "SessionStarted")
            sim.send("session_cost", running_cost(2, 700))
            await browser.shows(2, "Charging")
            sta.event(2, "TransactionFinished")
            sta.event(2, "SessionFinished")
            await browser.shows(2, "Thank you", "Final cost not received yet")
            # EVSE 2's EVerest module goes silent: its card says the charger is offline.
            sta.alive[2] = False
            await browser.shows(2, "Charger offline", timeout=20)
            assert "Charger offline" not in await browser.text(1)
            # EVSE 1's module goes silent while a session runs: the last total, marked, and
            # nothing live (power, duration, the ≈ total are not current any more).
            second = "0f4a5b7c-0000-4000-8000-0000000000b1"
            sta.evse(1, "session_event", session_event("SessionStarted", second))
            sta.info(1, 2000, 7400)
            sim.send("session_cost", {**running_cost(1, 800), "session_id": second,
                                      "charging_price": [{"category": "Energy", "price": {
                                          "currency": {"decimals": 3},
                                          "value": {"value": 390}}}]})
            await browser.shows(1, "Charging", "7.4 kW", "≈")
            sta.alive[1] = False
            offline = await browser.shows(1, "Charger offline", "not updated", timeout=20)
            assert "7.4 kW" not in offline and "≈" not in offline and "0:01:05" not in offline
    asyncio.run(scenario())


def test_a_receipt_qr_on_screen_can_be_scanned(broker: Mosquitto, tmp_path: Path,
                                                browser: Browser) -> None:  # noqa: F811
    url = "https://receipts.example.com/r/8F3A2C?session=0f4a5b7c"

    async def scenario() -> None:
        async with station(tmp_path, broker.port) as (sim, sta, _, port):
            browser.size(800, 480)
            await browser.open(f"http://127.0.0.1:{port}/evse/1")
            sta.event(1, "SessionStarted")
            sim.send("session_cost", {**running_cost(1, 4500), "status": "Finished",
                                      "qr_code": url})
            await browser.shows(1, "Thank you")
            await browser.until("const i = document.querySelector('.qr-receipt img');"
                                 "return i && i.complete && i.naturalWidth > 0;",
                                 what="the receipt QR image")
            png = tmp_path / "receipt.png"
            await browser.screenshot(png)
            assert qr_codes(png) == [url]
    asyncio.run(scenario())


def test_a_payment_qr_per_connector_on_the_price_screen(broker: Mosquitto, tmp_path: Path,
                                                        browser: Browser) -> None:  # noqa: F811
    async def scenario() -> None:
        async with station(tmp_path, broker.port, web="") as (_, sta, agent, port):
            # Restart with a payment URL template (the station fixture writes the config).
            await agent.terminate()
            with_payment(agent.config)
            await agent.start()
            await both_up(port)
            sta.evse(1, "evse_id", "DE*PNX*E12345*1")
            sta.evse(2, "evse_id", "DE*PNX*E12345*2")
            browser.size(1024, 600)
            await browser.open(f"http://127.0.0.1:{port}/")
            for i in (1, 2):
                await browser.shows(i, "Scan to pay here", f"DE*PNX*E12345*{i}")
            await browser.until("return [...document.querySelectorAll('.qr-payment img')]"
                                ".filter(i => i.complete && i.naturalWidth > 0).length == 2",
                                what="both payment codes drawn")
            png = tmp_path / "pay.png"
            await browser.screenshot(png)
            assert sorted(qr_codes(png)) == [f"https://pay.example.com/DE*PNX*E12345*{i}"
                                             for i in (1, 2)]
    asyncio.run(scenario())


def test_a_new_cost_reaches_the_page_within_a_second_without_reload(
        broker: Mosquitto, tmp_path: Path, browser: Browser) -> None:  # noqa: F811
    async def scenario() -> None:
        async with station(tmp_path, broker.port) as (sim, sta, _, port):
            browser.size(800, 480)
            await browser.open(f"http://127.0.0.1:{port}/")
            await browser.js("window.sameDocument = true;")
            sta.event(1, "SessionStarted")
            sim.send("session_cost", running_cost(1, 1000))
            await browser.shows(1, "Charging")
            loop = asyncio.get_running_loop()
            for value in (2345, 3456, 4567):
                sent = loop.time()
                sim.send("session_cost", running_cost(1, value))
                expected = await wait_until(partial(total_of, tmp_path, 1, value),
                                            what=f"total {value} in the view")
                await browser.until("return document.querySelector(\".display[data-evse='1'] "
                                    ".total\").textContent == arguments[0];", expected,
                                    what=f"total {value} on the page")
                assert loop.time() - sent < 1.0
            assert await browser.js("return window.sameDocument === true;")
    asyncio.run(scenario())


def test_the_page_says_it_lost_the_agent_and_recovers_after_a_restart(
        broker: Mosquitto, tmp_path: Path, browser: Browser) -> None:  # noqa: F811
    async def scenario() -> None:
        async with station(tmp_path, broker.port) as (sim, sta, agent, port):
            browser.size(800, 480)
            await browser.open(f"http://127.0.0.1:{port}/")
            await browser.shows(1, "Price")
            await browser.js("window.sameDocument = true;")
            lost = "return !document.getElementById('lost').hidden;"
            assert not await browser.js(lost)
            assert await agent.terminate() == 0
            await browser.until(lost, what="the page saying it lost the agent")
            assert "Display disconnected" in await browser.js("return document.body.innerText;")
            restarted = AgentProcess(web_config(tmp_path, broker.port, f"127.0.0.1:{port}"))
            await restarted.start()
            try:
                await browser.until("return document.getElementById('lost').hidden;",
                                    what="the page back with the agent")
                sta.event(1, "SessionStarted")
                sim.send("session_cost", running_cost(1, 9870))
                await browser.shows(1, "Charging", "9.87")
                assert await browser.js("return window.sameDocument === true;")
            finally:
                await restarted.kill()
    asyncio.run(scenario())


def test_each_connector_shows_its_own_session(broker: Mosquitto, tmp_path: Path,
                                              browser: Browser) -> None:  # noqa: F811
    async def scenario() -> None:
        async with station(tmp_path, broker.port) as (sim, sta, _, port):
            browser.size(1280, 800)
            await browser.open(f"http://127.0.0.1:{port}/")
            for i in (1, 2):
                sta.event(i, "SessionStarted")
                sta.info(i, 1000 * i, 3700 * i)
            for i in (2, 1):  # interleaved on the one session cost topic
                sim.send("session_cost", running_cost(i, 1111 * i))
            for i in (1, 2):
                await wait_until(partial(session_total, tmp_path, i), what=f"EVSE {i}'s session")
            one, two = total_text(tmp_path, 1), total_text(tmp_path, 2)
            assert one != two
            text1 = await browser.shows(1, one, "1.000 kWh")
            text2 = await browser.shows(2, two, "2.000 kWh")
            assert two not in text1 and one not in text2
            # A per-connector kiosk: only its own EVSE.
            await browser.open(f"http://127.0.0.1:{port}/evse/2")
            await browser.shows(2, two)
            assert await browser.js("return document.querySelectorAll('.display').length;") == 1
            assert one not in await browser.js("return document.body.innerText;")
    asyncio.run(scenario())


FITS = """
const out = [];
const root = document.documentElement;
if (root.scrollWidth > innerWidth || root.scrollHeight > innerHeight) out.push('page scrolls');
for (const card of document.querySelectorAll('.display')) {
  const box = card.getBoundingClientRect();
  for (const sel of ['.screen-title', '.total', '.fact-value', '.qr img', '.headline']) {
    for (const el of card.querySelectorAll(sel)) {
      const r = el.getBoundingClientRect();
      if (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 ||
          r.bottom > box.bottom + 1) out.push(card.dataset.evse + sel + ' outside its card');
      if (el.scrollWidth > el.clientWidth + 1) out.push(card.dataset.evse + sel + ' cut off');
    }
  }
  for (const img of card.querySelectorAll('.qr img')) {
    const r = img.getBoundingClientRect();
    if (Math.min(r.width, r.height) < 0.3 * Math.min(box.width, box.height))
      out.push(card.dataset.evse + ' QR code too small: ' + Math.round(r.width));
  }
}
return out;
"""


def test_the_page_fits_every_screen_size_without_scrolling(
        broker: Mosquitto, tmp_path: Path, browser: Browser) -> None:  # noqa: F811
    async def scenario() -> None:
        async with station(tmp_path, broker.port) as (sim, sta, _, port):
            # EVSE 1 charging with every number on screen, EVSE 2 finished with its receipt.
            sta.evse(1, "evse_id", "DE*PNX*E12345*1")
            sta.event(1, "SessionStarted")
            sta.info(1, 123456, 22000)
            sim.send("session_cost", {**running_cost(1, 123456), "charging_price": [
                {"category": "Energy", "price": {"currency": {"decimals": 3},
                                                 "value": {"value": 390}}}]})
            sta.event(2, "SessionStarted")
            sim.send("session_cost", {**running_cost(2, 45678), "status": "Finished",
                                      "qr_code": "https://receipts.example.com/r/8F3A2C"})
            await wait_until(lambda: shown(tmp_path, 2).get("screen") == "finished"
                             and shown(tmp_path, 1).get("screen") == "charging",
                             what="both screens")
            for path in ("/", "/evse/1", "/evse/2"):
                for width, height in SIZES:
                    browser.size(width, height)
                    await browser.open(f"http://127.0.0.1:{port}{path}")
                    await browser.until("return document.querySelector('.display .head');",
                                        what="the page drawn")
                    await browser.until("return [...document.querySelectorAll('.qr img')]"
                                        ".every(i => i.complete && i.naturalWidth > 0);",
                                        what="its codes loaded")
                    problems = await browser.js(FITS)
                    assert problems == [], f"{path} at {width}x{height}: {problems}"
    asyncio.run(scenario())


def test_the_transparency_qr_carries_the_signed_end_record_or_says_it_is_too_long(
        broker: Mosquitto, tmp_path: Path, browser: Browser) -> None:  # noqa: F811
    from tests.everest_events import session_event
    from tests.test_signed_meter import OCMF_END, OCMF_START, signed

    async def scenario() -> None:
        async with station(tmp_path, broker.port) as (sim, sta, agent, port):
            await agent.terminate()
            agent.config.write_text(agent.config.read_text().replace(
                "[display]\n", "[display]\ntransparency_qr = true\n", 1))
            await agent.start()
            await both_up(port)
            too_long = OCMF_END + "X" * 3000  # no QR code holds it
            for i, end in ((1, OCMF_END), (2, too_long)):
                sta.event(i, "SessionStarted")
                started = session_event("TransactionStarted", SESSIONS[i], f"0400000{i}")
                started["transaction_started"]["signed_meter_value"] = signed(OCMF_START)
                sta.evse(i, "session_event", started)
                finished = session_event("TransactionFinished", SESSIONS[i])
                finished["transaction_finished"]["signed_meter_value"] = signed(end)
                sta.evse(i, "session_event", finished)
                sta.event(i, "SessionFinished")
                sim.send("session_cost", {**running_cost(i, 4500), "status": "Finished",
                                          "qr_code": f"https://receipts.example.com/r/{i}"})
            browser.size(1280, 800)
            await browser.open(f"http://127.0.0.1:{port}/evse/1")
            await browser.shows(1, "Scan for the transparency software")
            await browser.until("return [...document.querySelectorAll('.qr img')]"
                                ".filter(i => i.complete && i.naturalWidth > 0).length == 2",
                                what="receipt and transparency codes")
            png = tmp_path / "transparency.png"
            await browser.screenshot(png)
            assert sorted(qr_codes(png)) == sorted([OCMF_END, "https://receipts.example.com/r/1"])
            await browser.open(f"http://127.0.0.1:{port}/evse/2")
            await browser.shows(2, "Too long for a QR code")
    asyncio.run(scenario())


def test_a_backend_message_shows_on_its_sessions_card_with_its_qr_code(
        broker: Mosquitto, tmp_path: Path, browser: Browser) -> None:  # noqa: F811
    from agent.process.mqtt import Connection
    from agent.settings.config import MqttConfig

    base = "everest_api/1/display_message/display/"

    async def scenario() -> None:
        async with station(tmp_path, broker.port) as (sim, sta, agent, port):
            await agent.terminate()
            agent.config.write_text(agent.config.read_text()
                                    + '[display_messages]\nmodule_id = "display"\n')
            await agent.start()
            await both_up(port)
            sta.event(2, "SessionStarted")
            sim.send("session_cost", running_cost(2, 900))
            browser.size(1024, 600)
            await browser.open(f"http://127.0.0.1:{port}/")
            await browser.shows(2, "Charging")
            async with Connection(MqttConfig(port=broker.port), "", [base + "m2e/#"],
                                  timeout_s=5.0) as everest:
                everest.publish(base + "e2m/set_display_message", json.dumps({
                    "headers": {"replyTo": base + "m2e/reply/1"},
                    "payload": [{"id": 5, "priority": "AlwaysFront",
                                 "identifier_id": SESSIONS[2],
                                 "identifier_type": "TransactionId",
                                 "message": {"content": "Please move your car after charging",
                                             "format": "UTF8"},
                                 "qr_code": "https://help.example.com/5"}]}).encode())
                await browser.shows(2, "Please move your car after charging", "Scan for details")
                assert "Please move" not in await browser.text(1)
                await browser.until("const i = document.querySelector(\".display[data-evse='2'] "
                                    ".qr-message img\"); return i && i.complete && "
                                    "i.naturalWidth > 0;", what="the message's QR code")
                png = tmp_path / "message.png"
                await browser.screenshot(png)
                assert "https://help.example.com/5" in qr_codes(png)
    asyncio.run(scenario())
