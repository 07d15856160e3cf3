"""Typed messages of EVerest's session cost consumer API and one prebuilt decoder per topic.

Schemas: everest-core docs/source/reference/EVerest_API (session_cost_consumer, session_cost,
display_message). Optional fields are UNSET when absent. EVerest's codec writes an IdlePrice,
ChargingPriceComponent or SessionCostChunk with no member set as JSON `null`, also as an array
element: those three (and only those) may be None, which means "absent" (an element: skip it).
Every other null is rejected like any other wrong type. Unknown fields are ignored, and fields
the display never shows (the driver's `id_tag`) are not decoded at all.
A zero-byte payload is MQTT's way to clear a retained message: it decodes to `CLEARED`.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from agent.model.currencies import CurrencyCode
from agent.structs import Record

CostCategory = Literal["Energy", "Time", "FlatFee", "Other"]
SessionStatus = Literal["Running", "Idle", "Finished"]
MessageFormat = Literal["ASCII", "HTML", "URI", "UTF8", "QRCODE"]
IdentifierType = Literal["IdToken", "SessionId", "TransactionId"]

# No ISO 4217 currency has more than 4 minor digits; 18 keeps 10**decimals inside int64 range.
Decimals = Annotated[int, Meta(ge=0, le=18)]
# msgspec bounds must fit int64, so the uint64 ceiling is checked in decode().
HeartbeatId = Annotated[int, Meta(ge=0)]
HEARTBEAT_MAX: Final = 2**64 - 1
# EVerest's MoneyAmount.value is a C++ int32_t: anything outside is not from EVerest.
Int32 = Annotated[int, Meta(ge=-(2**31), le=2**31 - 1)]

# frozen: messages are shared by the display state; gc=False: no cycles to track.


class MessageContent(Record):
    """One text in one language and format."""

    content: str
    format: MessageFormat | UnsetType = UNSET
    language: str | UnsetType = UNSET


class Currency(Record):
    """Currency code and the number of decimals the values use (both optional)."""

    code: CurrencyCode | UnsetType = UNSET
    decimals: Decimals | UnsetType = UNSET


class MoneyAmount(Record):
    """An amount in units of 10**-decimals of the currency."""

    value: Int32


class Price(Record):
    """A unit price: amount plus the currency it is expressed in."""

    currency: Currency
    value: MoneyAmount


class ChargingPriceComponent(Record):
    """Price of one cost category while charging."""

    category: CostCategory | UnsetType = UNSET
    price: Price | UnsetType = UNSET


class IdlePrice(Record):
    """Idle fee per hour after a grace period."""

    grace_minutes: int | UnsetType = UNSET
    hour_price: Price | UnsetType = UNSET


class NextPeriodPrice(Record):
    """Prices that start at `timestamp_from` (may be the empty string)."""

    timestamp_from: str
    charging_price: list[ChargingPriceComponent | None]
    idle_price: IdlePrice | UnsetType | None = UNSET


class SessionCostChunk(Record):
    """A part of the session cost; the session total is the sum of all chunks."""

    timestamp_from: str | UnsetType = UNSET
    timestamp_to: str | UnsetType = UNSET
    metervalue_from: int | UnsetType = UNSET
    metervalue_to: int | UnsetType = UNSET
    cost: MoneyAmount | UnsetType = UNSET
    category: CostCategory | UnsetType = UNSET


class DefaultPrice(Record):
    """Price text shown before any session (no amounts)."""

    messages: list[MessageContent]


class TariffMessage(Record):
    """Tariff text bound to a token (at authorization) or to a session/transaction."""

    messages: list[MessageContent]
    ocpp_transaction_id: str | UnsetType = UNSET
    identifier_id: str | UnsetType = UNSET
    identifier_type: IdentifierType | UnsetType = UNSET


class SessionCost(Record):
    """Running or final cost of one session."""

    session_id: str
    currency: Currency
    status: SessionStatus
    # id_tag (the driver's RFID UID) is deliberately not declared: never decoded, never stored.
    cost_chunks: list[SessionCostChunk | None] | UnsetType = UNSET
    idle_price: IdlePrice | UnsetType | None = UNSET
    charging_price: list[ChargingPriceComponent | None] | UnsetType = UNSET
    next_period: NextPeriodPrice | UnsetType = UNSET
    message: list[MessageContent] | UnsetType = UNSET
    qr_code: str | UnsetType = UNSET

    @property
    def total(self) -> int:
        """The session total in units of 10**-decimals: the sum of the chunks' cost values
        (EVerest writes a chunk with no member set as null: it carries nothing)."""
        chunks = self.cost_chunks
        if chunks is UNSET:
            return 0
        return sum(c.cost.value for c in chunks if c is not None and c.cost is not UNSET)


class Heartbeat(Record):
    """EVerest's heartbeat counter (uint64, wraps to 0)."""

    id: int


class Cleared(Record):
    """A zero-byte payload: the retained message of the topic was cleared (not an error)."""


CLEARED: Final = Cleared()

Message = DefaultPrice | TariffMessage | SessionCost | Heartbeat | Cleared

TOPICS: Final = ("default_price", "tariff_message", "session_cost", "heartbeat")


class DecodeError(Exception):
    """A payload that does not match its topic's schema."""

    def __init__(self, topic: str, reason: str) -> None:
        super().__init__(f"{topic}: {reason}")
        self.topic = topic
        self.reason = reason


_DECODERS: Final[dict[str, msgspec.json.Decoder[DefaultPrice | TariffMessage | SessionCost]]] = {
    "default_price": msgspec.json.Decoder(DefaultPrice),
    "tariff_message": msgspec.json.Decoder(TariffMessage),
    "session_cost": msgspec.json.Decoder(SessionCost),
}
_HEARTBEAT: Final = msgspec.json.Decoder(HeartbeatId)
_CHECK_TRUE: Final = b"true"
_CHECK_FALSE: Final = b"false"


def decode(topic: str, payload: bytes) -> Message:
    """Decode a payload of `topic`; raises DecodeError (only) when it is not valid."""
    if topic != "heartbeat" and topic not in _DECODERS:
        raise DecodeError(topic, "unknown topic")
    if not payload:
        return CLEARED
    try:
        if topic == "heartbeat":
            beat = _HEARTBEAT.decode(payload)
            if beat > HEARTBEAT_MAX:
                raise DecodeError(topic, "Expected `int` <= 2**64-1")
            return Heartbeat(beat)
        return _DECODERS[topic].decode(payload)
    except msgspec.ValidationError as exc:
        raise DecodeError(topic, str(exc)) from None
    except (msgspec.DecodeError, ValueError, TypeError, RecursionError) as exc:
        raise DecodeError(topic, f"malformed JSON: {exc}") from None


def encode_communication_check(alive: bool) -> bytes:
    """The communication_check payload: JSON `true` to stay alive, `false` to stop checking."""
    return _CHECK_TRUE if alive else _CHECK_FALSE
