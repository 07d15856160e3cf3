"""Pydantic v2 models equivalent to agent.everest.session_cost, for the benchmark's comparison
column only.

Same fields, enums and bounds as the msgspec Structs; unknown fields are ignored and values are
validated strictly (no "1" -> 1 coercion). One difference: pydantic has no UNSET, so optional
fields default to None and an explicit null is accepted (the agent's decoder rejects it). That
does not matter for throughput. Importing this module requires pydantic (a dev extra).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.everest.session_cost import (
    CostCategory,
    IdentifierType,
    MessageFormat,
    SessionStatus,
)
from agent.model.currencies import CurrencyCode

# The agent no longer decodes id_tag; the comparison model keeps the full schema.
IdTokenType = Literal[
    "Central", "eMAID", "MacAddress", "ISO14443", "ISO15693", "KeyCode", "Local", "NoAuthorization"
]
AuthorizationType = Literal["OCPP", "RFID", "Autocharge", "PlugAndCharge", "BankCard"]

_CONFIG = ConfigDict(strict=True, frozen=True, extra="ignore")
TokenValue = Annotated[str, Field(max_length=36)]


class MessageContent(BaseModel):
    """display_message_API MessageContent."""

    model_config = _CONFIG
    content: str
    format: MessageFormat | None = None
    language: str | None = None


class Currency(BaseModel):
    """Currency code and decimals."""

    model_config = _CONFIG
    code: CurrencyCode | None = None
    decimals: Annotated[int, Field(ge=0, le=18)] | None = None


class MoneyAmount(BaseModel):
    """Amount in minor units."""

    model_config = _CONFIG
    value: int


class Price(BaseModel):
    """Unit price."""

    model_config = _CONFIG
    currency: Currency
    value: MoneyAmount


class ChargingPriceComponent(BaseModel):
    """Price of one category."""

    model_config = _CONFIG
    category: CostCategory | None = None
    price: Price | None = None


class IdlePrice(BaseModel):
    """Idle fee."""

    model_config = _CONFIG
    grace_minutes: int | None = None
    hour_price: Price | None = None


class NextPeriodPrice(BaseModel):
    """Prices of the next period."""

    model_config = _CONFIG
    timestamp_from: str
    charging_price: list[ChargingPriceComponent]
    idle_price: IdlePrice | None = None


class SessionCostChunk(BaseModel):
    """One chunk of the session cost."""

    model_config = _CONFIG
    timestamp_from: str | None = None
    timestamp_to: str | None = None
    metervalue_from: int | None = None
    metervalue_to: int | None = None
    cost: MoneyAmount | None = None
    category: CostCategory | None = None


class CustomIdToken(BaseModel):
    """Free-form token info."""

    model_config = _CONFIG
    value: TokenValue
    type: Annotated[str, Field(max_length=50)]


class IdToken(BaseModel):
    """Token value and type."""

    model_config = _CONFIG
    value: TokenValue
    type: IdTokenType
    additional_info: list[CustomIdToken] | None = None


class ProvidedIdToken(BaseModel):
    """The token that authorized the session."""

    model_config = _CONFIG
    id_token: IdToken
    authorization_type: AuthorizationType
    request_id: int | None = None
    parent_id_token: IdToken | None = None
    connectors: list[Annotated[int, Field(ge=1)]] | None = None
    prevalidated: bool | None = None


class DefaultPrice(BaseModel):
    """e2m/default_price."""

    model_config = _CONFIG
    messages: list[MessageContent]


class TariffMessage(BaseModel):
    """e2m/tariff_message."""

    model_config = _CONFIG
    messages: list[MessageContent]
    ocpp_transaction_id: str | None = None
    identifier_id: str | None = None
    identifier_type: IdentifierType | None = None


class SessionCost(BaseModel):
    """e2m/session_cost."""

    model_config = _CONFIG
    session_id: str
    currency: Currency
    status: SessionStatus
    id_tag: ProvidedIdToken | None = None
    cost_chunks: list[SessionCostChunk] | None = None
    idle_price: IdlePrice | None = None
    charging_price: list[ChargingPriceComponent] | None = None
    next_period: NextPeriodPrice | None = None
    message: list[MessageContent] | None = None
    qr_code: str | None = None


MODELS: dict[str, type[BaseModel]] = {
    "default_price": DefaultPrice,
    "tariff_message": TariffMessage,
    "session_cost": SessionCost,
}
