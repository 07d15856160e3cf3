"""Renders each screen of the web display at 800x480 in headless chromium into docs/screens/.

`make screenshots`. The real agent, a private mosquitto and the test suite's EVerest stand-in
(a two-EVSE station) play one session per screen; the README shows the pictures.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from tempfile import TemporaryDirectory

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent.dev.broker import Mosquitto  # noqa: E402
from tests.browser import Browser, browser_missing  # noqa: E402
from tests.web import both_up, running_cost, station  # noqa: E402

OUT = REPO / "docs" / "screens"
PRICES = {"charging_price": [
    {"category": "Energy", "price": {"currency": {"decimals": 3}, "value": {"value": 390}}},
    {"category": "Time", "price": {"currency": {"decimals": 2}, "value": {"value": 120}}}],
    "idle_price": {"grace_minutes": 30, "hour_price": {"currency": {"decimals": 2},
                                                       "value": {"value": 600}}}}
WEB = 'languages = ["en", "de"]\ntitle = "Example Charging · Hauptstraße 1"'
PAY = 'payment_url = "https://pay.example.com/{evse_id}"\n'


async def main() -> None:
    """Play each screen and take its picture."""
    why = browser_missing()
    if why:
        raise SystemExit(f"screenshots: {why}")
    OUT.mkdir(parents=True, exist_ok=True)
    browser = Browser()
    try:
        with Mosquitto() as broker, TemporaryDirectory() as tmp:
            await shoot(browser, broker.port, Path(tmp))
    finally:
        browser.close()


async def shoot(browser: Browser, broker_port: int, tmp: Path) -> None:
    """The scenes, in the order a driver sees them."""
    async with station(tmp, broker_port, WEB) as (sim, sta, agent, port):
        await agent.terminate()
        agent.config.write_text(agent.config.read_text().replace("[display]\n",
                                                                 f"[display]\n{PAY}", 1))
        await agent.start()
        await both_up(port)
        for i in (1, 2):
            sta.evse(i, "evse_id", f"DE*EXA*E0042*{i}")
            sta.evse(i, "powermeter_public_key_ocmf",
                     "3059301306072A8648CE3D020106082A8648CE3D03010703420004A1B2C3D4E5F6")
        sim.send("default_price", {"messages": [
            {"content": "0.39 EUR/kWh + 1.20 EUR/h", "language": "en"},
            {"content": "0,39 EUR/kWh + 1,20 EUR/h", "language": "de"}]})
        browser.size(800, 480)
        url = f"http://127.0.0.1:{port}"
        await browser.open(f"{url}/evse/1")
        await browser.shows(1, "Scan to pay here")
        await settle(browser)
        await browser.screenshot(OUT / "price.png")
        sim.send("tariff_message", {"identifier_id": "04AABBCC", "identifier_type": "IdToken",
                                    "messages": [{"content": "Welcome! Your tariff: 0.35 EUR/kWh",
                                                  "language": "en"}]})
        sta.event(1, "SessionStarted", token="04AABBCC")
        await browser.shows(1, "Your tariff")
        await browser.screenshot(OUT / "tariff.png")
        sta.info(1, 18450, 11000)
        sim.send("session_cost", {**running_cost(1, 7196), **PRICES})
        await browser.shows(1, "Charging", "18.450 kWh")
        await browser.screenshot(OUT / "charging.png")
        sim.send("session_cost", {**running_cost(1, 7310), **PRICES, "status": "Idle"})
        await browser.shows(1, "Not charging")
        await browser.screenshot(OUT / "idle.png")
        sta.event(1, "TransactionFinished")
        sta.event(1, "SessionFinished")
        sim.send("session_cost", {**running_cost(1, 7310), "status": "Finished",
                                  "qr_code": "https://receipts.example.com/r/8F3A2C",
                                  "message": [{"content": "Thank you for charging with us!",
                                               "language": "en"}]})
        await browser.shows(1, "Scan for your receipt")
        await settle(browser)
        await browser.screenshot(OUT / "finished.png")
        # The station page: EVSE 1's receipt beside EVSE 2's running session.
        sta.event(2, "SessionStarted")
        sta.info(2, 5230, 7400)
        sim.send("session_cost", {**running_cost(2, 2540), **PRICES})
        await browser.open(url + "/")
        await browser.shows(2, "Charging")
        await settle(browser)
        await browser.screenshot(OUT / "station.png")
        sta.alive[2] = False
        await browser.shows(2, "Charger offline", timeout=20)
        await browser.screenshot(OUT / "offline.png")
    for png in sorted(OUT.glob("*.png")):
        print(png.relative_to(REPO))


async def settle(browser: Browser) -> None:
    """Every QR image loaded."""
    await browser.until("return [...document.querySelectorAll('.qr img')]"
                        ".every(i => i.complete && i.naturalWidth > 0);", what="QR images")


if __name__ == "__main__":
    asyncio.run(main())
