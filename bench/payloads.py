"""EVerest-shaped fixture payloads for the session cost consumer API, one function per message.

Shapes follow everest-core's JSON codec (optional fields omitted, never null) and the AsyncAPI
schemas in session_cost_API.yaml / display_message_API.yaml / auth_consumer_API.yaml. Tests reuse
them, so every payload here must decode with `agent.everest.session_cost.decode`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

JSON = dict[str, Any]


def _dumps(doc: object) -> bytes:
    # EVerest's nlohmann::json dump(): compact, UTF-8, no ASCII escaping.
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def _price(value: int, decimals: int = 4, code: str = "EUR") -> JSON:
    return {"currency": {"code": code, "decimals": decimals}, "value": {"value": value}}


def default_price_doc() -> JSON:
    """The ad-hoc price text shown before authorization, in three languages."""
    return {
        "messages": [
            {"content": "0.59 EUR/kWh, 0.10 EUR/min after 60 min idle, no start fee",
             "format": "UTF8", "language": "en"},
            {"content": "0,59 EUR/kWh, 0,10 EUR/Min. Standgebühr ab 60 Min., keine Startgebühr",
             "format": "UTF8", "language": "de"},
            {"content": "0,59 EUR/kWh, 0,10 EUR/min d'occupation après 60 min",
             "format": "UTF8", "language": "fr"},
        ]
    }


def tariff_message_doc() -> JSON:
    """The user's tariff text right after authorization (bound to the token)."""
    return {
        "messages": [
            {"content": "<b>Your tariff:</b> 0.45 EUR/kWh<br>Idle fee 0.10 EUR/min after 60 min",
             "format": "HTML", "language": "en"},
            {"content": "<b>Ihr Tarif:</b> 0,45 EUR/kWh<br>Standgebühr 0,10 EUR/Min. ab 60 Min.",
             "format": "HTML", "language": "de"},
        ],
        "identifier_id": "04A2B3C4D5E6F7",
        "identifier_type": "IdToken",
    }


def _id_tag() -> JSON:
    return {
        "id_token": {"value": "04A2B3C4D5E6F7", "type": "ISO14443"},
        "authorization_type": "RFID",
        "request_id": 17,
        "connectors": [1],
        "prevalidated": False,
    }


def _charging_price() -> list[JSON]:
    return [
        {"category": "Energy", "price": _price(4500)},
        {"category": "Time", "price": _price(60000)},
        {"category": "FlatFee", "price": _price(10000)},
    ]


def session_cost_doc(total: int = 123456, energy_wh: int = 27432,
                     session_id: str = "5c0e1f0a-7f43-4a3e-9d0b-2a8f1e6c4b11") -> JSON:
    """A typical running session cost from OCPP (~1 KB): one cumulative chunk plus prices."""
    return {
        "session_id": session_id,
        "id_tag": _id_tag(),
        "currency": {"code": "EUR", "decimals": 4},
        "status": "Running",
        "cost_chunks": [
            {
                "timestamp_from": "2026-05-06T08:12:03.000Z",
                "timestamp_to": "2026-05-06T08:57:41.000Z",
                "metervalue_from": 0,
                "metervalue_to": energy_wh,
                "cost": {"value": total},
                "category": "Energy",
            }
        ],
        "charging_price": _charging_price(),
        "idle_price": {"grace_minutes": 60, "hour_price": _price(60000)},
        "next_period": {
            "timestamp_from": "2026-05-06T18:00:00.000Z",
            "charging_price": [
                {"category": "Energy", "price": _price(5900)},
                {"category": "Time", "price": _price(60000)},
            ],
            "idle_price": {"grace_minutes": 30, "hour_price": _price(90000)},
        },
        "message": [
            {"content": "Running cost 12.35 EUR", "format": "UTF8", "language": "en"},
            {"content": "Aktuelle Kosten 12,35 EUR", "format": "UTF8", "language": "de"},
        ],
        "qr_code": "https://pay.example.com/r/5c0e1f0a",
    }


def large_session_cost_doc(chunks: int = 100, offset: int = 0) -> JSON:
    """A session cost from a non-OCPP producer: `chunks` 5-minute chunks of alternating category."""
    doc = session_cost_doc()
    categories = ("Energy", "Time", "Energy", "Other")
    doc["cost_chunks"] = [
        {
            "timestamp_from": f"2026-05-06T{8 + i // 12:02d}:{(i % 12) * 5:02d}:00.000Z",
            "timestamp_to": f"2026-05-06T{8 + (i + 1) // 12:02d}:{((i + 1) % 12) * 5:02d}:00.000Z",
            "metervalue_from": 1000 * i,
            "metervalue_to": 1000 * (i + 1),
            "cost": {"value": 4500 + 37 * i + offset},
            "category": categories[i % len(categories)],
        }
        for i in range(chunks)
    ]
    return doc


def default_price() -> bytes:
    """`e2m/default_price` payload."""
    return _dumps(default_price_doc())


def tariff_message() -> bytes:
    """`e2m/tariff_message` payload."""
    return _dumps(tariff_message_doc())


def session_cost(total: int = 123456, energy_wh: int = 27432) -> bytes:
    """`e2m/session_cost` payload, typical OCPP running cost (~1 KB)."""
    return _dumps(session_cost_doc(total, energy_wh))


def large_session_cost(offset: int = 0) -> bytes:
    """`e2m/session_cost` payload with 100 chunks."""
    return _dumps(large_session_cost_doc(offset=offset))


def heartbeat(beat: int = 42) -> bytes:
    """`e2m/heartbeat` payload."""
    return str(beat).encode()


def set_display_message(content: str = "Planned maintenance tonight 22:00-23:00") -> bytes:
    """`e2m/set_display_message` as EVerest's AsyncApiRequestReply frames an OCPP 2.0.1
    SetDisplayMessage bound to a transaction."""
    return _dumps({
        "headers": {"replyTo": "everest_api/1/display_message/display/m2e/reply/"
                               "4f5b6c7d-8e9f-4a0b-9c1d-2e3f4a5b6c7d"},
        "payload": [{"id": 17, "priority": "InFront", "state": "Charging",
                     "timestamp_from": "2026-12-03T10:00:00Z",
                     "timestamp_to": "2026-12-03T23:00:00Z",
                     "identifier_id": "0f4a5b7c-0000-4000-8000-000000000001",
                     "identifier_type": "TransactionId",
                     "message": {"content": content, "format": "UTF8", "language": "en"},
                     "qr_code": "https://status.example.com/maintenance/17"}]})


# name -> (topic, payload factory); the benchmark rows, in order.
CASES: Final[dict[str, tuple[str, Callable[[], bytes]]]] = {
    "default_price": ("default_price", default_price),
    "tariff_message": ("tariff_message", tariff_message),
    "session_cost": ("session_cost", session_cost),
    "session_cost_100": ("session_cost", large_session_cost),
    "set_display_message": ("set_display_message", set_display_message),
}

# A second payload per case, differing in what the view shows, so that alternating the two makes
# every display update produce a new view.
ALTERNATES: Final[dict[str, Callable[[], bytes]]] = {
    "default_price": lambda: default_price().replace(b"0.59", b"0.61"),
    "tariff_message": lambda: tariff_message().replace(b"0.45", b"0.47"),
    "session_cost": lambda: session_cost(total=124017, energy_wh=27519),
    "session_cost_100": lambda: large_session_cost(offset=1),
    "set_display_message": lambda: set_display_message("Planned maintenance tonight 22:30"),
}
