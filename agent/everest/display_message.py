"""EVerest's display_message API: the requests EVerest publishes and the replies it waits for.

What arrives, read in everest-core (`modules/API/display_message_API/main/display_messageImpl.cpp`,
`lib/everest/everest_api_types/.../AsyncApiRequestReply.hpp` and `display_message/json_codec.cpp`):
EVerest publishes on `everest_api/1/display_message/{module_id}/e2m/{set,get,clear}_display_message`
the object `{"headers": {"replyTo": <topic>}, "payload": <request>}`; `payload` is left out when
the request is empty (a set of no messages, a get with no filter). The reply topic is
`.../m2e/reply/<uuid>`; the reply is the response JSON on it. EVerest waits
`cfg_request_reply_to_s` (550 s by default) and otherwise answers its caller with a default
(set: UnknownTransaction, clear: Unknown, get: no messages). A reply its C++ cannot read is
dropped as if none came, so a reply must carry exactly the C++ codec's fields: `status` always
(set and clear), optional members left out rather than null.

A set request is an array of DisplayMessage; `message` is required (its `content` too), `id` is an
int32. OCPP 2.0.1 sends `identifier_type: TransactionId` with the transaction id, which EVerest's
OCPP201 module takes from the EVSE manager's session uuid.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from agent.everest.session_cost import IdentifierType, Int32, MessageContent
from agent.structs import Record

Priority = Literal["AlwaysFront", "InFront", "NormalCycle"]
MessageState = Literal["Charging", "Faulted", "Idle", "Unavailable", "Suspending", "Discharging"]
SetStatus = Literal["Accepted", "NotSupportedMessageFormat", "Rejected", "NotSupportedPriority",
                    "NotSupportedState", "UnknownTransaction"]
ClearStatus = Literal["Accepted", "Unknown"]
Identifier = Annotated[str, Meta(max_length=36)]
TOPICS: Final = ("set_display_message", "get_display_message", "clear_display_message")


class DisplayMessage(Record, omit_defaults=True):
    """One message to show (OCPP's MessageInfo as EVerest carries it)."""

    message: MessageContent
    id: Int32 | UnsetType = UNSET
    priority: Priority | UnsetType = UNSET
    state: MessageState | UnsetType = UNSET
    timestamp_from: str | UnsetType = UNSET
    timestamp_to: str | UnsetType = UNSET
    identifier_id: Identifier | UnsetType = UNSET
    identifier_type: IdentifierType | UnsetType = UNSET
    qr_code: str | UnsetType = UNSET


class GetFilter(Record, omit_defaults=True):
    """A get request: every filter given must match (none given: every message)."""

    id: list[Int32] | UnsetType = UNSET
    priority: Priority | UnsetType = UNSET
    state: MessageState | UnsetType = UNSET


class ClearId(Record):
    """A clear request: the id of the message to remove."""

    id: Int32


class Headers(Record):
    """The request's headers: where the reply goes (absent: no reply is wanted)."""

    replyTo: str | UnsetType = UNSET  # EVerest's field name


class Envelope(Record):
    """Any request, its payload not decoded yet: the reply topic is readable even when the
    payload is not valid."""

    headers: Headers | UnsetType = UNSET
    payload: msgspec.Raw = msgspec.Raw(b"")


class SetReply(Record, omit_defaults=True):
    """The reply to a set request."""

    status: SetStatus
    status_info: str | UnsetType = UNSET


class GetReply(Record, omit_defaults=True):
    """The reply to a get request."""

    messages: list[DisplayMessage] | UnsetType = UNSET
    status_info: str | UnsetType = UNSET


class ClearReply(Record, omit_defaults=True):
    """The reply to a clear request."""

    status: ClearStatus
    status_info: str | UnsetType = UNSET


Request = list[DisplayMessage] | GetFilter | ClearId
Reply = SetReply | GetReply | ClearReply


class RequestError(Exception):
    """A request that does not match its schema; `reply_to` is set when it can be answered."""

    def __init__(self, topic: str, reason: str, reply_to: str | None) -> None:
        super().__init__(f"{topic}: {reason}")
        self.topic = topic
        self.reason = reason
        self.reply_to = reply_to


_ENVELOPE: Final = msgspec.json.Decoder(Envelope)
_PAYLOADS: Final[dict[str, msgspec.json.Decoder[Request]]] = {
    "set_display_message": msgspec.json.Decoder(list[DisplayMessage]),
    "get_display_message": msgspec.json.Decoder(GetFilter),
    "clear_display_message": msgspec.json.Decoder(ClearId),
}
_EMPTY: Final[dict[str, Request]] = {"set_display_message": [],
                                     "get_display_message": GetFilter()}
_encoder: Final = msgspec.json.Encoder()


def decode(topic: str, payload: bytes) -> tuple[str | None, Request]:
    """(reply topic or None, request) of one request; raises RequestError when not valid."""
    if topic not in _PAYLOADS:
        raise RequestError(topic, "unknown topic", None)
    try:
        envelope = _ENVELOPE.decode(payload)
    except (msgspec.DecodeError, ValueError, TypeError, RecursionError) as exc:
        raise RequestError(topic, f"not a request: {exc}", None) from None
    headers = envelope.headers
    reply_to = headers.replyTo if headers is not UNSET and headers.replyTo is not UNSET else None
    if not bytes(envelope.payload):
        if topic in _EMPTY:
            return reply_to, _EMPTY[topic]
        raise RequestError(topic, "Object missing required field `payload`", reply_to)
    try:
        return reply_to, _PAYLOADS[topic].decode(envelope.payload)
    except msgspec.ValidationError as exc:
        raise RequestError(topic, str(exc), reply_to) from None
    except (msgspec.DecodeError, ValueError, TypeError, RecursionError) as exc:
        raise RequestError(topic, f"malformed JSON: {exc}", reply_to) from None


def encode(reply: Reply) -> bytes:
    """A reply as EVerest's codec reads it (optional members left out)."""
    return _encoder.encode(reply)
