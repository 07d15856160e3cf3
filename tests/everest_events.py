"""EVSE manager session events as EVerest publishes them: every field its types require."""

from __future__ import annotations

from typing import Any

TIMESTAMP = "2026-11-21T10:00:00.000Z"


def meter(total_wh: float = 0.0) -> dict[str, Any]:
    """powermeter `PowermeterValues` with its required fields."""
    return {"timestamp": TIMESTAMP, "energy_Wh_import": {"total": total_wh}}


def id_tag(token: str, kind: str = "ISO14443") -> dict[str, Any]:
    """auth `ProvidedIdToken` with its required fields."""
    return {"id_token": {"value": token, "type": kind}, "authorization_type": "RFID"}


def session_event(kind: str, uuid: str, token: str | None = None, meter_wh: float = 0.0,
                  **extra: Any) -> dict[str, Any]:
    """A `session_event` of `kind` with the object EVerest attaches to it (`extra` overrides)."""
    doc: dict[str, Any] = {"uuid": uuid, "event": kind, "timestamp": TIMESTAMP}
    if kind == "SessionStarted":
        doc["session_started"] = {"reason": "Authorized" if token else "EVConnected",
                                  "meter_value": meter(meter_wh)}
        if token is not None:
            doc["session_started"]["id_tag"] = id_tag(token)
    elif kind == "TransactionStarted":
        doc["transaction_started"] = {"id_tag": id_tag(token or "FREE"),
                                      "meter_value": meter(meter_wh)}
    elif kind == "TransactionFinished":
        doc["transaction_finished"] = {"meter_value": meter(meter_wh)}
    elif kind == "SessionFinished":
        doc["session_finished"] = {"meter_value": meter(meter_wh)}
    doc.update(extra)
    return doc
