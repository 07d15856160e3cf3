"""Typed messages of EVerest's EVSE manager consumer API (one module per EVSE), one decoder each.

Topics (under `everest_api/1/evse_manager_consumer/{module_id}/e2m/`): `session_event`,
`session_info`, `evse_id`, `heartbeat`. Checked against EVerest's own types
(`lib/everest/everest_api_types/include/everest_api_types/evse_manager/API.hpp`, `auth/API.hpp`,
`powermeter/API.hpp` in everest-core; docs/everest-facts.md): integers to their C++ width, enums
to their values, and every field the schema requires of a message the agent acts on, since a
message without them is not from EVerest. Optional fields the agent never uses are not decoded
at all (a newer EVerest may add fields and values); unknown fields are ignored, null is
rejected like any wrong type.

A zero-byte payload is EVerest clearing a retained message, not an invalid one: `decode_evse`
returns `CLEARED` for it instead of raising.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Final, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from agent.everest.session_cost import CLEARED, HEARTBEAT_MAX, Cleared, DecodeError, Heartbeat
from agent.structs import Record

SessionEventEnum = Literal[
    "Authorized", "Deauthorized", "Enabled", "Disabled", "SessionStarted", "AuthRequired",
    "TransactionStarted", "PrepareCharging", "ChargingStarted", "ChargingPausedEV",
    "ChargingPausedEVSE", "StoppingCharging", "ChargingFinished", "TransactionFinished",
    "SessionFinished", "ReservationStart", "ReservationEnd", "PluginTimeout", "SwitchingPhases",
    "SessionResumed",
]
# C++ EvseStateEnum, plus "Reserved" of the AsyncAPI schema (harmless: it is never shown as such).
EvseStateEnum = Literal[
    "Unknown", "Unplugged", "Disabled", "Preparing", "Reserved", "AuthRequired",
    "ChargingPausedEV", "ChargingPausedEVSE", "Charging", "AuthTimeout", "Finished",
    "FinishedEVSE", "FinishedEV",
]
StartSessionReason = Literal["EVConnected", "Authorized"]
AuthorizationType = Literal["OCPP", "RFID", "Autocharge", "PlugAndCharge", "BankCard"]
IdTokenType = Literal[
    "Central", "eMAID", "MacAddress", "ISO14443", "ISO15693", "KeyCode", "Local", "NoAuthorization"
]
TokenValue = Annotated[str, Meta(max_length=36)]  # OCPP 2.0.1 IdToken: at most 36 characters

_INT32_MAX: Final = 2**31 - 1
_Int32 = Annotated[int, Meta(ge=-(2**31), le=_INT32_MAX)]
_NonNegativeInt32 = Annotated[int, Meta(ge=0, le=_INT32_MAX)]
_NonNegativeInt64 = Annotated[int, Meta(ge=0, le=2**63 - 1)]
_NonNegative = Annotated[int, Meta(ge=0)]
# Session ids are UUIDs and EVSE ids ISO 15118 / eMI3 ids; both reach views, so they are bounded.
_Id = Annotated[str, Meta(max_length=64)]
# Strings of a signed meter value (OCMF data is a few hundred bytes; the payload limit bounds all).
_SignedText = Annotated[str, Meta(max_length=16384)]
# An OCMF public key is a DER key in hex (an EC P-521 key: 316 characters); room for others.
_PublicKey = Annotated[str, Meta(min_length=1, max_length=1024)]
_Timestamp = Annotated[str, Meta(max_length=64)]
# Meter registers are C++ `float` JSON numbers; beyond 10**15 Wh is a broken meter, and the bound
# keeps 1e999 (decoded as inf) out.
_MeterWh = Annotated[float, Meta(ge=0, le=1e15)]

EVSE_TOPICS: Final = ("session_event", "session_info", "evse_id", "powermeter_public_key_ocmf",
                       "heartbeat")

# Session events that can happen outside a session (their uuid may be empty or stale).
OUTSIDE_SESSION: Final = frozenset(
    {"Enabled", "Disabled", "ReservationStart", "ReservationEnd", "Authorized", "Deauthorized"})
# session_info states in which the EVSE has a session (from plug-in to unplugging): the
# session is there whether or not its SessionStarted (sent once, QoS 0) was seen.
SESSION_STATES: Final = frozenset(
    {"Preparing", "AuthRequired", "Charging", "ChargingPausedEV", "ChargingPausedEVSE",
     "Finished", "FinishedEVSE", "FinishedEV"})


class Energy(Record):
    """powermeter `Energy`: only the billing-relevant `total` (required) is decoded."""

    total: _MeterWh


class MeterValue(Record):
    """powermeter `PowermeterValues`: its two required fields; the optional rest is not decoded."""

    timestamp: _Timestamp
    energy_Wh_import: Energy  # the schema's spelling


class Token(Record):
    """auth `IdToken`: value and type (required); `additional_info` is not decoded."""

    value: TokenValue
    type: IdTokenType


class IdTag(Record):
    """auth `ProvidedIdToken`: the token and `authorization_type` (both required)."""

    id_token: Token
    authorization_type: AuthorizationType


class SessionStarted(Record):
    """`SessionStarted`: `reason` and `meter_value` required, `id_tag` when authorized first."""

    reason: StartSessionReason
    meter_value: MeterValue
    id_tag: IdTag | UnsetType = UNSET


class SignedMeterValue(Record):
    """powermeter `SignedMeterValue` (Eichrecht), decoded only to check it; the agent keeps
    and shows the object's own bytes (`Signed`), never a re-encoding."""

    signed_meter_data: _SignedText
    signing_method: _SignedText
    encoding_method: _SignedText
    public_key: _SignedText | UnsetType = UNSET
    timestamp: _SignedText | UnsetType = UNSET


# A signed meter value exactly as EVerest published it (checked against SignedMeterValue).
Signed = msgspec.Raw


class TransactionStarted(Record):
    """`TransactionStarted`: the token that authorized the transaction and the meter (required),
    and the meter's signed start value when it signs."""

    id_tag: IdTag
    meter_value: MeterValue
    signed_meter_value: Signed | UnsetType = UNSET


class Finished(Record):
    """`SessionFinished`: the meter at the end (required)."""

    meter_value: MeterValue


class TransactionFinished(Finished):
    """`TransactionFinished`: the meter at the end (required) and, when the meter signs, the
    signed start and end values of the transaction."""

    start_signed_meter_value: Signed | UnsetType = UNSET
    signed_meter_value: Signed | UnsetType = UNSET


class SessionEvent(Record):
    """One session event of one EVSE; `uuid` is the same string as session_cost's session_id.

    The four events the agent acts on must carry their object (EVerest always fills it), checked
    in decode_evse: SessionStarted `session_started`, TransactionStarted `transaction_started`,
    TransactionFinished `transaction_finished`, SessionFinished `session_finished`.
    """

    uuid: _Id
    event: SessionEventEnum
    timestamp: _Timestamp
    # C++ `std::optional<int32_t>`; the schema: "If the connector_id is not specified, its
    # assumed to be 1".
    connector_id: _Int32 = 1
    session_started: SessionStarted | UnsetType = UNSET
    transaction_started: TransactionStarted | UnsetType = UNSET
    transaction_finished: TransactionFinished | UnsetType = UNSET
    session_finished: Finished | UnsetType = UNSET

    @property
    def signed(self) -> tuple[Signed | None, Signed | None]:
        """The transaction's signed meter values this event carries: (start, end), as published."""
        started, finished = self.transaction_started, self.transaction_finished
        if started is not UNSET:
            return _signed_value(started.signed_meter_value), None
        if finished is not UNSET:
            return (_signed_value(finished.start_signed_meter_value),
                    _signed_value(finished.signed_meter_value))
        return None, None

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


# The object each acted-on event must carry: without it, the message is not EVerest's.
_REQUIRED_OBJECT: Final = {"SessionStarted": "session_started",
                           "TransactionStarted": "transaction_started",
                           "TransactionFinished": "transaction_finished",
                           "SessionFinished": "session_finished"}


class SessionInfo(Record):
    """Live values of the EVSE's session (about 1 Hz while a session runs, else on change).

    C++ `int32_t` energies and power, `int64_t` duration, all required; the optional protocol
    and transaction times are not decoded.
    """

    state: EvseStateEnum
    charged_energy_wh: _NonNegativeInt32
    discharged_energy_wh: _NonNegativeInt32
    latest_total_w: _Int32  # negative while discharging
    session_duration_s: _NonNegativeInt64
    timestamp: _Timestamp


class EvseId(Record):
    """The EVSE id including the connector number, e.g. `DE*PNX*E12345*1`."""

    value: str


class MeterPublicKey(Record):
    """The billing meter's OCMF public key (Eichrecht), as published: never re-encoded."""

    value: str


EvseMessage = SessionEvent | SessionInfo | EvseId | MeterPublicKey | Heartbeat



class _Decoders:
    """One prebuilt decoder per topic, built at the first EVSE message (none without [[evse]])."""

    def __init__(self) -> None:
        self.event = msgspec.json.Decoder(SessionEvent)
        self.info = msgspec.json.Decoder(SessionInfo)
        self.evse_id = msgspec.json.Decoder(_Id)
        self.public_key = msgspec.json.Decoder(_PublicKey)
        self.signed = msgspec.json.Decoder(SignedMeterValue)
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
            return _complete(decoders.event.decode(payload))
        if topic == "session_info":
            return decoders.info.decode(payload)
        if topic == "evse_id":
            return EvseId(_printable(topic, decoders.evse_id.decode(payload)))
        if topic == "powermeter_public_key_ocmf":
            return MeterPublicKey(_printable(topic, decoders.public_key.decode(payload)))
        beat = decoders.heartbeat.decode(payload)
        if beat > HEARTBEAT_MAX:
            raise DecodeError(topic, "Expected `int` <= 2**64-1")
        return Heartbeat(beat)
    except msgspec.ValidationError as exc:
        raise DecodeError(topic, str(exc)) from None
    except (msgspec.DecodeError, ValueError, TypeError, RecursionError) as exc:
        raise DecodeError(topic, f"malformed JSON: {exc}") from None


def _complete(event: SessionEvent) -> SessionEvent:
    """`event`, unless it lacks the object its kind requires (then DecodeError)."""
    field = _REQUIRED_OBJECT.get(event.event)
    if field is not None and getattr(event, field) is UNSET:
        raise DecodeError("session_event", f"{event.event} without `{field}`")
    _printable("session_event", event.uuid)
    for value in event.signed:
        if value is not None:
            _decoders().signed.decode(value)  # raises ValidationError: the event is rejected
    return event


def _signed_value(raw: Signed | UnsetType) -> Signed | None:
    """A signed meter value as published, or None (absent, or written as null)."""
    return None if raw is UNSET or raw == b"null" else raw


def _printable(topic: str, value: str) -> str:
    """`value`, which a display shows (session id, EVSE id): no control characters."""
    if not value.isprintable():
        raise DecodeError(topic, "Expected a printable string")
    return value
