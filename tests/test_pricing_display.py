"""Local pricing on the display: preview lines, session estimate, backend cross-check."""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from agent.dev.broker import Mosquitto
from agent.everest.session_cost import SessionCost, decode
from agent.model.money import DEFAULT_FORMAT
from agent.pricing.preview import estimate, preview_lines, session_usage
from agent.pricing.structure import load_rate
from tests.harness import AgentProcess, Everest, agent_config, cost, read_json, wait_until

FIXTURES = Path(__file__).parent / "fixtures" / "pricing"
TOKEN = "s3cr3t-pricing-token-0123456789"


def session(metervalue_from: int, metervalue_to: int, start: str, end: str,
            value: int = 0) -> SessionCost:
    doc = cost(value=value)
    doc["cost_chunks"] = [{"cost": {"value": value}, "metervalue_from": metervalue_from,
                           "metervalue_to": metervalue_to, "timestamp_from": start,
                           "timestamp_to": end}]
    msg = decode("session_cost", msgspec.json.encode(doc))
    assert isinstance(msg, SessionCost)
    return msg


def test_preview_lists_effective_price_every_fee_and_example() -> None:
    rate = load_rate((FIXTURES / "energy_time_fee.json").read_bytes())
    assert preview_lines(rate, 20, "EUR", DEFAULT_FORMAT) == (
        "0.42 EUR/kWh", "0.10 EUR/min after 60 min", "1.50 EUR per session",
        "20 kWh = 9.90 EUR")


def test_preview_of_the_documents_first_example() -> None:
    rate = load_rate((FIXTURES / "example1_rate.json").read_bytes())
    # 20 kWh: 0.0404 + 0.0004 + 19.898 kWh * 0.4 = 8.0000 EUR, i.e. 0.40 EUR/kWh effective.
    assert preview_lines(rate, 20, None, DEFAULT_FORMAT) == (
        "0.40 EUR/kWh", "20 kWh = 8.00 EUR")


def test_estimate_uses_energy_and_duration_of_the_chunks() -> None:
    rate = load_rate((FIXTURES / "energy_time_fee.json").read_bytes())
    msg = session(1000, 11000, "2026-11-21T09:00:00Z", "2026-11-21T10:30:00Z")
    assert session_usage(msg) == (10000, Decimal(5400))
    result = estimate(rate, msg, "EUR", DEFAULT_FORMAT)
    assert result is not None
    shown, breakdown = result
    # 10 kWh * 0.42 + 30 min * 0.10 (first hour free) + 1.50 session fee
    assert breakdown.cost_total == Decimal("8.70")
    assert (shown.value, shown.text, shown.currency) == ("8.7", "8.70 EUR", "EUR")


def test_no_estimate_without_meter_values() -> None:
    rate = load_rate((FIXTURES / "energy_time_fee.json").read_bytes())
    msg = session(0, 0, "2026-11-21T09:00:00Z", "2026-11-21T10:30:00Z")
    assert estimate(rate, msg, "EUR", DEFAULT_FORMAT) is None


class _RateHandler(http.server.BaseHTTPRequestHandler):
    body = b""
    seen: list[tuple[str, str | None]] = []  # noqa: RUF012 - class-level record for the test

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("x-api-token")))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def rate_server() -> Iterator[tuple[str, type[_RateHandler]]]:
    handler = type("Handler", (_RateHandler,), {"seen": [],
                   "body": (FIXTURES / "energy_time_fee.json").read_bytes()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/pricing/", handler
    server.shutdown()
    server.server_close()


def test_agent_fetches_rate_at_authorization_and_cross_checks(
        broker: Mosquitto, tmp_path: Path, rate_server: tuple[str, type[_RateHandler]]) -> None:
    url, handler = rate_server
    (tmp_path / "token").write_text(TOKEN + "\n")
    config = agent_config(tmp_path, broker.port, heartbeat_timeout_s=0, extra=f"""
[pricing]
api_url = "{url}"
evse_id = "DE*EEE*E000001"
token_file = "{tmp_path}/token"
timeout_s = 2
example_kwh = 20
tolerance = "0.05"
""")

    async def scenario() -> None:
        agent = await AgentProcess(config).start()
        everest = await Everest(broker.port).connect()
        view_path = tmp_path / "display.json"
        try:
            await wait_until(lambda: (v := read_json(view_path)) and v["link"] == "up")
            everest.send("tariff_message", {"identifier_id": "04A1B2C3",
                                            "identifier_type": "IdToken",
                                            "messages": [{"content": "Welcome"}]})
            view = await wait_until(lambda: (v := read_json(view_path)) and v["preview"] and v,
                                    what="preview from the fetched rate")
            assert view["screen"] == "tariff"
            assert view["preview"][-1] == "20 kWh = 9.90 EUR"
            assert handler.seen[0][1] == TOKEN
            assert "tag_id=04A1B2C3" in handler.seen[0][0]
            # Backend charges 5.00 EUR where the local tariff says 8.70 EUR: one warning.
            doc = cost(value=5000)
            doc["cost_chunks"] = [{"cost": {"value": 5000}, "metervalue_from": 1000,
                                   "metervalue_to": 11000,
                                   "timestamp_from": "2026-11-21T09:00:00Z",
                                   "timestamp_to": "2026-11-21T10:30:00Z"}]
            everest.send("session_cost", doc)
            everest.send("session_cost", doc)
            view = await wait_until(lambda: (v := read_json(view_path)) and v["estimate"] and v)
            assert view["estimate"]["text"] == "8.70 EUR"
            assert view["total"]["text"] == "5.00 EUR"
            status = await wait_until(lambda: (s := read_json(tmp_path / "status.json"))
                                      and s["received"]["session_cost"] == 2 and s)
            assert status["pricing"]["mismatches"] == 1
            assert status["pricing"]["ok"] == 1
            assert await agent.terminate() == 0
            log = agent.log()
            assert log.count("differs from local estimate") == 1
            assert TOKEN not in log
            assert TOKEN not in (tmp_path / "status.json").read_text()
        finally:
            await agent.kill()
            await everest.close()
    asyncio.run(scenario())


def test_a_drivers_rate_prices_only_their_evse_and_their_session(
        tmp_path: Path, rate_server: tuple[str, type[_RateHandler]]) -> None:
    """The API answers an authorization at EVSE 1 with that driver's Rate: EVSE 2 keeps the
    station's Rate (preview and cross-check), and so does EVSE 1's next session."""
    from agent.model.state import DisplayConfig
    from agent.pricing.live import LivePricing
    from agent.pricing.settings import PricingConfig

    url, _ = rate_server
    (tmp_path / "token").write_text(TOKEN + "\n")
    pricing = LivePricing(PricingConfig(
        api_url=url, token_file=str(tmp_path / "token"), tolerance=Decimal("0.05"),
        structure_file=str(FIXTURES / "example1_rate.json")), DisplayConfig())
    station = ("0.40 EUR/kWh", "20 kWh = 8.00 EUR")
    assert pricing.preview(1) == pricing.preview(2) == station

    assert asyncio.run(pricing.authorize("04A1B2C3", "DE*EEE*E000001", [1]))
    assert pricing.preview(1)[-1] == "20 kWh = 9.90 EUR"  # the driver's, at their EVSE only
    assert pricing.preview(2) == station

    def charged(sid: str, value: int) -> SessionCost:  # 10 kWh in 90 min, the backend's total
        msg = session(1000, 11000, "2026-11-21T09:00:00Z", "2026-11-21T10:30:00Z", value)
        return msgspec.structs.replace(msg, session_id=sid)

    # Each backend total matches the Rate of its own session: no mismatch anywhere.
    driver = pricing.estimate(charged("S1", 8700), 1)
    other = pricing.estimate(charged("S2", 4000), 2)
    assert driver is not None and driver.text == "8.70 EUR"
    assert other is not None and other.text == "4.00 EUR"  # 10 kWh at the station's 0.40
    assert pricing.mismatches == 0
    assert pricing.preview(1, "S1")[-1] == "20 kWh = 9.90 EUR"
    # EVSE 1's next session (another driver, no authorization): the station's Rate again.
    nxt = pricing.estimate(charged("S3", 4000), 1)
    assert nxt is not None and nxt.text == "4.00 EUR" and pricing.mismatches == 0
    assert pricing.preview(1, "S3") == station
