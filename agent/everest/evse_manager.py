"""Typed messages of EVerest's EVSE manager consumer API (one module per EVSE), one decoder each.

Topics (under `everest_api/1/evse_manager_consumer/{module_id}/e2m/`): `session_event`,
`session_info`, `evse_id`, `heartbeat`. Only the fields the display uses are decoded; unknown
fields are ignored, optional fields are UNSET when absent, null is rejected like any wrong type.

A zero-byte payload is EVerest clearing a retained message, not an invalid one: `decode_evse`
returns `CLEARED` for it instead of raising.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Annotated, Final, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from agent.everest.session_cost import CLEARED, HEARTBEAT_MAX, Cleared, DecodeError, Heartbeat

SessionEventEnum = Literal[
    "Authorized", "Deauthorized", "Enabled", "Disabled", "SessionStarted", "AuthRequired",
    "TransactionStarted", "PrepareCharging", "ChargingStarted", "ChargingPausedEV",
    "ChargingPausedEVSE", "StoppingCharging", "ChargingFinished", "TransactionFinished",
    "SessionFinished", "ReservationStart", "ReservationEnd", "PluginTimeout", "SwitchingPhases",
    "SessionResumed",
]
EvseStateEnum = Literal[
    "Unknown", "Unplugged", "Disabled", "Preparing", "Reserved", "AuthRequired",
    "ChargingPausedEV", "ChargingPausedEVSE", "Charging", "AuthTimeout", "Finished",
    "FinishedEVSE", "FinishedEV",
]

IdTokenType = Literal[
    "Central", "eMAID", "MacAddress", "ISO14443", "ISO15693", "KeyCode", "Local", "NoAuthorization"
]
TokenValue = Annotated[str, Meta(max_length=36)]

# Meter registers are JSON numbers (C++ double); anything beyond 10**15 Wh is a broken meter,
# and the bound also keeps 1e999 (decoded as inf) out.
_MeterWh = Annotated[float, Meta(ge=0, le=1e15)]
_NonNegative = Annotated[int, Meta(ge=0)]

EVSE_TOPICS: Final = ("session_event", "session_info", "evse_id", "heartbeat")
EvseTopic = Literal["session_event", "session_info", "evse_id", "heartbeat"]

# frozen: messages are shared by the display state; gc=False: no cycles to track.


def wh(total: float) -> int:
    """A meter reading in Wh (a JSON number) as whole Wh, rounded half up."""
    # Decimal(float) is exact, so 2.5 rounds to 3 and 2.4999999 to 2 without float surprises.
    return int(Decimal(total).quantize(Decimal(1), rounding=ROUND_HALF_UP))


class Energy(msgspec.Struct, frozen=True, gc=False):
    """An energy register; only the billing-relevant total is decoded."""

    total: _MeterWh


class MeterValue(msgspec.Struct, frozen=True, gc=False):
    """A powermeter sample; only the imported energy register is decoded."""

    energy_Wh_import: Energy  # the schema's spelling

    @property
    def import_wh(self) -> int:
        """The imported energy register in whole Wh (rounded half up)."""
        return wh(self.energy_Wh_import.total)


class Token(msgspec.Struct, frozen=True, gc=False):
    """An id token: its value and type (additional info is ignored)."""

    value: TokenValue
    type: IdTokenType


class IdTag(msgspec.Struct, frozen=True, gc=False):
    """The ProvidedIdToken of a session; only the token itself is decoded."""

    id_token: Token


class SessionStarted(msgspec.Struct, frozen=True, gc=False):
    """Data of SessionStarted: the token when the session began with an authorization."""

    id_tag: IdTag | UnsetType = UNSET


class TransactionStarted(msgspec.Struct, frozen=True, gc=False):
    """Data of TransactionStarted: the token that authorized the transaction."""

    id_tag: IdTag


class Finished(msgspec.Struct, frozen=True, gc=False):
    """Data of TransactionFinished / SessionFinished: the meter at the end."""

    meter_value: MeterValue


class SessionEvent(msgspec.Struct, frozen=True, gc=False):
    """One session event of one EVSE; `uuid` is the same string as session_cost's session_id."""

    uuid: str
    event: SessionEventEnum
    timestamp: str
    # The schema: "If the connector_id is not specified, its assumed to be 1".
    connector_id: int = 1
    session_started: SessionStarted | UnsetType = UNSET
    transaction_started: TransactionStarted | UnsetType = UNSET
    transaction_finished: Finished | UnsetType = UNSET
    session_finished: Finished | UnsetType = UNSET

    @property
    def token(self) -> Token | None:
        """The id token this event carries (SessionStarted or TransactionStarted), if any."""
        started = self.transaction_started
        if started is not UNSET:
            return started.id_tag.id_token
        session = self.session_started
        if session is not UNSET and session.id_tag is not UNSET:
            return session.id_tag.id_token
        return None

    @property
    def end_meter_wh(self) -> int | None:
        """The meter register (Wh) reported by TransactionFinished / SessionFinished, if any."""
        for finished in (self.transaction_finished, self.session_finished):
            if finished is not UNSET:
                return finished.meter_value.import_wh
        return None


class SessionInfo(msgspec.Struct, frozen=True, gc=False):
    """Live values of the EVSE's session (about 1 Hz while a session runs, else on change)."""

    state: EvseStateEnum
    # The schema types these as integer (unlike meter registers): floats are rejected.
    charged_energy_wh: _NonNegative
    latest_total_w: int  # negative while discharging
    session_duration_s: _NonNegative
    timestamp: str


class EvseId(msgspec.Struct, frozen=True, gc=False):
    """The EVSE id including the connector number, e.g. `DE*PNX*E12345*1`."""

    value: str



EvseMessage = SessionEvent | SessionInfo | EvseId | Heartbeat



class _Decoders:
    """One prebuilt decoder per topic, built at the first EVSE message (none without [[evse]])."""

    def __init__(self) -> None:
        self.event = msgspec.json.Decoder(SessionEvent)
        self.info = msgspec.json.Decoder(SessionInfo)
        self.string = msgspec.json.Decoder(str)
        # msgspec bounds must fit int64, so the uint64 ceiling is checked in decode_evse().
        self.heartbeat = msgspec.json.Decoder(_NonNegative)


@cache
def _decoders() -> _Decoders:
    return _Decoders()


def decode_evse(topic: str, payload: bytes) -> EvseMessage | Cleared:
    """Decode a payload of an EVSE manager `topic` (e.g. "session_info"); raises only DecodeError.

    Returns `CLEARED` for a zero-byte payload (a cleared retained message).
    """
    if topic not in EVSE_TOPICS:
        raise DecodeError(topic, "unknown topic")
    if not payload:
        return CLEARED
    decoders = _decoders()
    try:
        if topic == "session_event":
            return decoders.event.decode(payload)
        if topic == "session_info":
            return decoders.info.decode(payload)
        if topic == "evse_id":
            return EvseId(decoders.string.decode(payload))
        beat = decoders.heartbeat.decode(payload)
        if beat > HEARTBEAT_MAX:
            raise DecodeError(topic, "Expected `int` <= 2**64-1")
        return Heartbeat(beat)
    except msgspec.ValidationError as exc:
        raise DecodeError(topic, str(exc)) from None
    except (msgspec.DecodeError, ValueError, TypeError, RecursionError) as exc:
        raise DecodeError(topic, f"malformed JSON: {exc}") from None
