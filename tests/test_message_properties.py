"""Property tests of agent.everest.session_cost.decode against the AsyncAPI schemas.

- Any instance valid against the schema (session_cost_API.yaml, display_message_API.yaml,
  auth_consumer_API.yaml, session_cost_consumer_API.yaml) decodes, and key values survive.
- Random bytes, random JSON and mutated valid payloads never raise anything but DecodeError
  (with the topic set and a non-empty reason); mutations that make a payload invalid always do.
- Any valid message sequence goes through DisplayModel.update + view + encode_view without
  raising, and the total shown is the sum of the chunks.

The generators are driven by one small schema description (`Obj`, `Arr`, `Int`, ...), which also
tells the mutators where required fields, enums, bounds and lengths are.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from random import Random
from typing import Any, Final, Literal, get_args

import msgspec
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from msgspec import UNSET

from agent.everest.session_cost import (
    HEARTBEAT_MAX,
    TOPICS,
    Cleared,
    CostCategory,
    DecodeError,
    DefaultPrice,
    Heartbeat,
    IdentifierType,
    Message,
    MessageFormat,
    SessionCost,
    SessionStatus,
    TariffMessage,
    decode,
)
from agent.model.currencies import CODES
from agent.model.display import DisplayModel
from agent.model.state import DisplayConfig, LinkChanged, State, Tick
from agent.model.view import View, encode_view

PROPS: Final = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)
# For properties whose examples are expensive to generate or narrow in what they check.
FEWER: Final = settings(PROPS, max_examples=100)

# ---- a schema description, transcribed from the AsyncAPI YAML ----------------------------------


@dataclass(frozen=True)
class Int:
    """JSON Schema `integer`, optionally bounded."""

    minimum: int | None = None
    maximum: int | None = None


@dataclass(frozen=True)
class Str:
    """JSON Schema `string`; kind picks the generator ("text", "datetime", "content")."""

    max_length: int | None = None
    kind: str = "text"


@dataclass(frozen=True)
class Enum:
    """A string enum."""

    values: tuple[str, ...]


@dataclass(frozen=True)
class Bool:
    """JSON Schema `boolean`."""


@dataclass(frozen=True)
class Arr:
    """JSON Schema `array` of `items` (sizes bounded for the generator)."""

    items: Schema
    min_items: int = 0
    max_items: int = 2


@dataclass(frozen=True, eq=False)
class Obj:
    """JSON Schema `object`. `unchecked`: schema properties the Struct does not declare (the
    decoder ignores them, so invalid values there are accepted: not mutated)."""

    name: str
    required: dict[str, Schema]
    optional: dict[str, Schema] = field(default_factory=dict)
    extra: bool = True  # additionalProperties
    unchecked: frozenset[str] = frozenset()
    # EVerest's codec writes this object as null when none of its members is set.
    nullable: bool = False

    def declared(self) -> dict[str, Schema]:
        """All properties of the schema."""
        return {**self.required, **self.optional}


Schema = Int | Str | Enum | Bool | Arr | Obj

ANY_INT: Final = Int()
DATETIME: Final = Str(kind="datetime")
MESSAGE_CONTENT: Final = Obj(
    "MessageContent",
    {"content": Str(kind="content")},
    {"format": Enum(get_args(MessageFormat)), "language": Str(kind="language")},
)
CURRENCY: Final = Obj(
    "Currency",
    {},
    # The schema only says minimum 0; the agent bounds decimals to 18 (10**18 fits int64).
    {"code": Enum(tuple(sorted(CODES))), "decimals": Int(0, 18)},
)
# MoneyAmount.value is a C++ int32_t in EVerest.
MONEY: Final = Obj("MoneyAmount", {"value": Int(-(2**31), 2**31 - 1)})
PRICE: Final = Obj("Price", {"currency": CURRENCY, "value": MONEY})
CHARGING_PRICE: Final = Obj(
    "ChargingPriceComponent", {}, {"category": Enum(get_args(CostCategory)), "price": PRICE},
    nullable=True,
)
IDLE_PRICE: Final = Obj("IdlePrice", {}, {"grace_minutes": ANY_INT, "hour_price": PRICE},
                        nullable=True)
NEXT_PERIOD: Final = Obj(
    "NextPeriodPrice",
    {"timestamp_from": DATETIME, "charging_price": Arr(CHARGING_PRICE)},
    {"idle_price": IDLE_PRICE},
)
CHUNK: Final = Obj(
    "SessionCostChunk",
    {},
    {
        "timestamp_from": DATETIME,
        "timestamp_to": DATETIME,
        "metervalue_from": ANY_INT,
        "metervalue_to": ANY_INT,
        "cost": MONEY,
        "category": Enum(get_args(CostCategory)),
    },
    nullable=True,
)
# id_tag's schema: still generated (the agent must accept it) though never decoded.
IdTokenType = Literal[
    "Central", "eMAID", "MacAddress", "ISO14443", "ISO15693", "KeyCode", "Local", "NoAuthorization"
]
AuthorizationType = Literal["OCPP", "RFID", "Autocharge", "PlugAndCharge", "BankCard"]
CUSTOM_ID_TOKEN: Final = Obj("CustomIdToken", {"value": Str(36), "type": Str(50)})
ID_TOKEN: Final = Obj(
    "IdToken",
    {"value": Str(36), "type": Enum(get_args(IdTokenType))},
    {"additional_info": Arr(CUSTOM_ID_TOKEN, max_items=2)},
)
CERTIFICATE_HASH: Final = Obj(
    "CertificateHashDataInfo",
    {
        "hashAlgorithm": Enum(("SHA256", "SHA384", "SHA512")),
        "issuerNameHash": Str(128),
        "issuerKeyHash": Str(128),
        "serialNumber": Str(40),
        "responderURL": Str(512),
    },
)
PROVIDED_ID_TOKEN: Final = Obj(
    "ProvidedIdToken",
    {"id_token": ID_TOKEN, "authorization_type": Enum(get_args(AuthorizationType))},
    {
        "request_id": ANY_INT,
        "parent_id_token": ID_TOKEN,
        "connectors": Arr(Int(minimum=1)),
        "prevalidated": Bool(),
        "certificate": Str(5500),
        "iso15118CertificateHashData": Arr(CERTIFICATE_HASH, min_items=1, max_items=1),
    },
    unchecked=frozenset({"certificate", "iso15118CertificateHashData"}),
)
SESSION_COST: Final = Obj(
    "SessionCost",
    {"session_id": Str(), "currency": CURRENCY, "status": Enum(get_args(SessionStatus))},
    {
        "id_tag": PROVIDED_ID_TOKEN,
        "cost_chunks": Arr(CHUNK, max_items=4),
        "idle_price": IDLE_PRICE,
        "charging_price": Arr(CHARGING_PRICE),
        "next_period": NEXT_PERIOD,
        "message": Arr(MESSAGE_CONTENT),
        "qr_code": Str(),
    },
    # The driver's token is never decoded (nor stored): anything there is accepted.
    unchecked=frozenset({"id_tag"}),
)
TARIFF_MESSAGE: Final = Obj(
    "TariffMessage",
    {"messages": Arr(MESSAGE_CONTENT)},
    {
        "ocpp_transaction_id": Str(),
        "identifier_id": Str(),
        "identifier_type": Enum(get_args(IdentifierType)),
    },
)
# session_cost_consumer_API.yaml: DefaultPrice has additionalProperties: false.
DEFAULT_PRICE: Final = Obj("DefaultPrice", {"messages": Arr(MESSAGE_CONTENT)}, extra=False)
SCHEMAS: Final[dict[str, Obj]] = {
    "default_price": DEFAULT_PRICE,
    "tariff_message": TARIFF_MESSAGE,
    "session_cost": SESSION_COST,
}

# ---- generators ------------------------------------------------------------------------------

JSON_SCALARS: Final = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
)
JSON_VALUES: Final = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=4,
)
# Values where the schema allows any integer: small, int64/uint64 edges and far beyond.
EDGE_INTS: Final = (0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, -(2**63), 2**63, 2**64 - 1, 2**64,
                    -(2**64), 10**30, -(10**40))
# HTML-ish pieces so that HTML message content exercises the text extraction.
HTML_PIECES: Final = ("<b>", "</b>", "<br>", "<p>", "</p>", "<script>x</script>", "&amp;",
                      "&#8364;", "&euro;", "<!-- c -->", "<a href='u'>", "<", ">", "&", "<!x",
                      "<!DOCTYPE html>", "<div", "€", "Preis ", "\n\t ")
# Malformed `<![` marked sections once crashed html.parser; generate them too.
MARKED_SECTION: Final = "<!["
LANGUAGES: Final = ("en", "EN", "de", "de-DE", "fr", "en_US", "", " nl ", "zh-Hant-TW")


def _ints(spec: Int) -> st.SearchStrategy[int]:
    lo, hi = spec.minimum, spec.maximum
    edges = [i for i in EDGE_INTS if (lo is None or i >= lo) and (hi is None or i <= hi)]
    options: list[st.SearchStrategy[int]] = [st.integers(lo, hi)]
    if lo is None and hi is None:
        options.append(st.integers(-(2**200), 2**200))
    if edges:
        options.append(st.sampled_from(edges))
    return st.one_of(options)


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _strings(spec: Str, html_safe: bool) -> st.SearchStrategy[str]:
    limit = 24 if spec.max_length is None else min(spec.max_length, 40)
    text = st.text(max_size=limit)
    if spec.kind == "datetime":
        # RFC 3339 date-times; EVerest also sends "" for next_period.timestamp_from.
        moments = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1),
                               timezones=st.just(UTC))
        return st.one_of(moments.map(_rfc3339), st.just(""))
    if spec.kind == "language":
        return st.one_of(st.sampled_from(LANGUAGES), text)
    if spec.kind == "content":
        html = st.lists(st.one_of(st.sampled_from(HTML_PIECES), st.text(max_size=5)),
                        max_size=8).map("".join)
        content = st.one_of(text, html)
        return content
    if spec.max_length is not None and spec.max_length > limit:
        # Long-limit strings (certificate): sometimes right at the limit.
        return st.one_of(text, st.just("A" * spec.max_length))
    return text


def _with_extras(doc: dict[str, Any], spec: Obj) -> st.SearchStrategy[dict[str, Any]]:
    names = spec.declared()
    extras = st.dictionaries(st.text(max_size=12).filter(lambda k: k not in names), JSON_VALUES,
                             min_size=1, max_size=3)
    # Unknown fields anywhere in the object, not only at the end.
    return st.tuples(extras, st.randoms(use_true_random=False)).map(
        lambda pair: _shuffled({**doc, **pair[0]}, pair[1]))


def _shuffled(doc: dict[str, Any], rnd: Random) -> dict[str, Any]:
    items = list(doc.items())
    rnd.shuffle(items)
    return dict(items)


def _objects(spec: Obj, html_safe: bool) -> st.SearchStrategy[dict[str, Any]]:
    # Optional fields: present or absent, never null.
    plain = st.fixed_dictionaries(
        {k: strategy(v, html_safe) for k, v in spec.required.items()},
        optional={k: strategy(v, html_safe) for k, v in spec.optional.items()},
    )
    if not spec.extra:
        return plain
    return st.one_of(plain, plain, plain, plain.flatmap(lambda d: _with_extras(d, spec)))


def strategy(spec: Schema, html_safe: bool = False) -> st.SearchStrategy[Any]:
    """Schema-valid JSON values (as Python objects) for `spec`."""
    if isinstance(spec, Int):
        return _ints(spec)
    if isinstance(spec, Str):
        return _strings(spec, html_safe)
    if isinstance(spec, Enum):
        return st.sampled_from(spec.values)
    if isinstance(spec, Bool):
        return st.booleans()
    if isinstance(spec, Arr):
        return st.lists(strategy(spec.items, html_safe), min_size=spec.min_items,
                        max_size=spec.max_items)
    if spec.nullable:
        return st.one_of(_objects(spec, html_safe), _objects(spec, html_safe), st.none())
    return _objects(spec, html_safe)


@st.composite
def encoded(draw: st.DrawFn, doc: Any) -> bytes:
    """`doc` as JSON bytes, in one of the spellings a producer may use."""
    style = draw(st.sampled_from(("compact", "ascii", "spaced", "msgspec")))
    if style == "msgspec":
        return msgspec.json.encode(doc)
    if style == "spaced":
        return json.dumps(doc, indent=1, ensure_ascii=False).encode()
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=style == "ascii").encode()


@cache
def docs(topic: str, html_safe: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    """Schema-valid documents of `topic`."""
    return _objects(SCHEMAS[topic], html_safe)


def valid_message(
    topic: str, html_safe: bool = False
) -> st.SearchStrategy[tuple[dict[str, Any], bytes]]:
    """A schema-valid document of `topic` and its JSON bytes."""
    return docs(topic, html_safe).flatmap(lambda d: st.tuples(st.just(d), encoded(d)))


def _decoded_or_error(topic: str, payload: bytes) -> Message | None:
    """decode(), where the only failure allowed is DecodeError(topic, non-empty reason)."""
    try:
        return decode(topic, payload)
    except DecodeError as exc:
        assert exc.topic == topic
        assert isinstance(exc.reason, str)
        assert exc.reason.strip()
        assert topic in str(exc)
        return None


def _must_fail(topic: str, payload: bytes) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        decode(topic, payload)
    assert info.value.topic == topic
    assert info.value.reason.strip()
    return info.value


def expected_total(doc: dict[str, Any]) -> int:
    """The session total as the sum of the chunks' cost values in the JSON document."""
    return sum(c["cost"]["value"] for c in doc.get("cost_chunks", []) if c and "cost" in c)


def _contents(doc_messages: Sequence[dict[str, Any]]) -> list[str]:
    return [m["content"] for m in doc_messages]


# ---- valid instances decode --------------------------------------------------------------------


@PROPS
@given(valid_message("session_cost"))
def test_valid_session_cost_decodes(case: tuple[dict[str, Any], bytes]) -> None:
    doc, payload = case
    msg = decode("session_cost", payload)
    assert isinstance(msg, SessionCost)
    assert msg.session_id == doc["session_id"]
    assert msg.status == doc["status"]
    assert msg.currency.code == doc["currency"].get("code", UNSET)
    assert msg.currency.decimals == doc["currency"].get("decimals", UNSET)
    if "cost_chunks" in doc:
        assert msg.cost_chunks is not UNSET
        assert len(msg.cost_chunks) == len(doc["cost_chunks"])
        for chunk, chunk_doc in zip(msg.cost_chunks, doc["cost_chunks"], strict=True):
            if chunk_doc is None:  # a null chunk is kept as None and skipped by every user
                assert chunk is None
                continue
            assert chunk is not None
            assert chunk.metervalue_to == chunk_doc.get("metervalue_to", UNSET)
            assert chunk.timestamp_to == chunk_doc.get("timestamp_to", UNSET)
    else:
        assert msg.cost_chunks is UNSET
    assert msg.total == expected_total(doc)
    if "message" in doc:
        assert msg.message is not UNSET
        assert [m.content for m in msg.message] == _contents(doc["message"])
    assert msg.qr_code == doc.get("qr_code", UNSET)
    assert not hasattr(msg, "id_tag")  # the driver's token never enters the agent
    if "charging_price" in doc:
        assert msg.charging_price is not UNSET
        assert len(msg.charging_price) == len(doc["charging_price"])
    if doc.get("idle_price", 0) is None:
        assert msg.idle_price is None
    if "next_period" in doc:
        assert msg.next_period is not UNSET
        assert msg.next_period.timestamp_from == doc["next_period"]["timestamp_from"]


@PROPS
@given(valid_message("tariff_message"))
def test_valid_tariff_message_decodes(case: tuple[dict[str, Any], bytes]) -> None:
    doc, payload = case
    msg = decode("tariff_message", payload)
    assert isinstance(msg, TariffMessage)
    assert [m.content for m in msg.messages] == _contents(doc["messages"])
    assert [m.format for m in msg.messages] == [m.get("format", UNSET) for m in doc["messages"]]
    assert msg.identifier_type == doc.get("identifier_type", UNSET)
    assert msg.identifier_id == doc.get("identifier_id", UNSET)
    assert msg.ocpp_transaction_id == doc.get("ocpp_transaction_id", UNSET)


@PROPS
@given(valid_message("default_price"))
def test_valid_default_price_decodes(case: tuple[dict[str, Any], bytes]) -> None:
    doc, payload = case
    msg = decode("default_price", payload)
    assert isinstance(msg, DefaultPrice)
    assert [m.content for m in msg.messages] == _contents(doc["messages"])
    assert [m.language for m in msg.messages] == [
        m.get("language", UNSET) for m in doc["messages"]
    ]


@PROPS
@given(beat=st.one_of(st.integers(0, HEARTBEAT_MAX), st.sampled_from((0, 1, HEARTBEAT_MAX))),
       spaced=st.booleans())
def test_valid_heartbeat_decodes(beat: int, spaced: bool) -> None:
    payload = f" {beat}\n".encode() if spaced else str(beat).encode()
    assert decode("heartbeat", payload) == Heartbeat(beat)


def test_every_currency_code_decodes() -> None:
    for code in sorted(CODES):
        for decimals in range(19):
            payload = msgspec.json.encode(
                {"session_id": "s", "status": "Idle",
                 "currency": {"code": code, "decimals": decimals}})
            msg = decode("session_cost", payload)
            assert isinstance(msg, SessionCost)
            assert (msg.currency.code, msg.currency.decimals) == (code, decimals)


# ---- garbage never raises anything but DecodeError ---------------------------------------------

ALL_TOPICS: Final = (*TOPICS, "no_such_topic")


@PROPS
@given(topic=st.sampled_from(ALL_TOPICS), payload=st.binary(max_size=300))
def test_random_bytes_raise_only_decode_error(topic: str, payload: bytes) -> None:
    _decoded_or_error(topic, payload)


@PROPS
@given(topic=st.sampled_from(ALL_TOPICS), value=JSON_VALUES)
def test_random_json_raises_only_decode_error(topic: str, value: Any) -> None:
    _decoded_or_error(topic, json.dumps(value).encode())


def _fields_with_random_values(spec: Schema) -> st.SearchStrategy[Any]:
    """Objects with the schema's own keys but any JSON value (or the right shape) below them."""
    if isinstance(spec, Obj):
        fields = {k: st.one_of(JSON_VALUES, _fields_with_random_values(v))
                  for k, v in spec.declared().items()}
        return st.fixed_dictionaries({}, optional=fields)
    if isinstance(spec, Arr):
        return st.lists(st.one_of(JSON_VALUES, _fields_with_random_values(spec.items)),
                        max_size=3)
    return JSON_VALUES


@PROPS
@given(data=st.data(), topic=st.sampled_from(tuple(SCHEMAS)))
def test_schema_shaped_garbage_raises_only_decode_error(data: st.DataObject, topic: str) -> None:
    doc = data.draw(_fields_with_random_values(SCHEMAS[topic]))
    _decoded_or_error(topic, json.dumps(doc).encode())


@pytest.mark.parametrize("topic", ALL_TOPICS)
@pytest.mark.parametrize(
    "payload",
    [b"", b" ", b"null", b"{}", b"[]", b"\xff\xfe", b"{\"messages\": [", b"[" * 100_000,
     b"{\"messages\":[],\"x\":" + b"[" * 100_000 + b"]" * 100_000 + b"}",
     b"{\"session_id\": \"\\ud800\"}", b"NaN", b"1e400", b"\"\\u0000\""],
)
def test_pathological_payloads_raise_only_decode_error(topic: str, payload: bytes) -> None:
    _decoded_or_error(topic, payload)


# ---- mutations ---------------------------------------------------------------------------------

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Site:
    """A value in a document, the schema it must satisfy, and whether its key is required."""

    path: Path
    spec: Schema
    required: bool


def sites(doc: Any, spec: Schema, path: Path = ()) -> Iterator[Site]:
    """Every checked value below `doc` (not `doc` itself)."""
    if doc is None:
        return  # a nullable object written as null has nothing below it
    if isinstance(spec, Obj):
        for key, sub in spec.declared().items():
            if key in doc and key not in spec.unchecked:
                yield Site((*path, key), sub, key in spec.required)
                yield from sites(doc[key], sub, (*path, key))
    elif isinstance(spec, Arr):
        for i, item in enumerate(doc):
            yield Site((*path, i), spec.items, False)
            yield from sites(item, spec.items, (*path, i))


def _parent(doc: Any, path: Path) -> Any:
    for step in path[:-1]:
        doc = doc[step]
    return doc


def _wrong_types(spec: Schema) -> tuple[Any, ...]:
    if isinstance(spec, Int):
        return ("1", 1.5, True, None, [], {})
    if isinstance(spec, Str | Enum):
        return (1, 1.5, False, [], {"a": 1})
    if isinstance(spec, Bool):
        return (0, 1, "true", [], {})
    if isinstance(spec, Arr):
        return ({}, "[]", 1, True)
    return ([], "{}", 1, True)


def _out_of_range(spec: Int | Str, draw: st.DrawFn) -> Any:
    if isinstance(spec, Str):
        assert spec.max_length is not None
        return draw(st.text(min_size=spec.max_length + 1, max_size=spec.max_length + 4))
    candidates: list[st.SearchStrategy[int]] = []
    if spec.minimum is not None:
        candidates.append(st.sampled_from((spec.minimum - 1, -(2**64))))
        candidates.append(st.integers(max_value=spec.minimum - 1))
    if spec.maximum is not None:
        candidates.append(st.sampled_from((spec.maximum + 1, 2**64)))
        candidates.append(st.integers(min_value=spec.maximum + 1))
    return draw(st.one_of(candidates))


def _bounded(spec: Schema) -> bool:
    if isinstance(spec, Int):
        return spec.minimum is not None or spec.maximum is not None
    return isinstance(spec, Str) and spec.max_length is not None


MUTATIONS: Final = ("drop_required", "null", "wrong_type", "bad_enum", "out_of_range")


def _applicable(kind: str, site: Site) -> bool:
    if kind == "drop_required":
        return site.required
    if kind == "null":
        return not (isinstance(site.spec, Obj) and site.spec.nullable)
    if kind == "bad_enum":
        return isinstance(site.spec, Enum)
    if kind == "out_of_range":
        return _bounded(site.spec)
    return True


@st.composite
def invalid_message(draw: st.DrawFn, topic: str, kind: str) -> tuple[Path, bytes]:
    """A valid document with one `kind` mutation that makes it schema-invalid: (path, bytes)."""
    doc = draw(docs(topic))
    found = [s for s in sites(doc, SCHEMAS[topic]) if _applicable(kind, s)]
    assume(found)
    site = draw(st.sampled_from(found))
    mutated = copy.deepcopy(doc)
    parent, key = _parent(mutated, site.path), site.path[-1]
    if kind == "drop_required":
        del parent[key]
    elif kind == "null":
        parent[key] = None
    elif kind == "wrong_type":
        parent[key] = draw(st.sampled_from(_wrong_types(site.spec)))
    elif kind == "bad_enum":
        assert isinstance(site.spec, Enum)
        values = site.spec.values
        parent[key] = draw(st.one_of(
            st.text(max_size=12), st.sampled_from(values).map(str.lower),
            st.sampled_from(values).map(lambda v: v + " "),
        ).filter(lambda v: v not in values))
    else:
        assert isinstance(site.spec, Int | Str)
        parent[key] = _out_of_range(site.spec, draw)
    return site.path, draw(encoded(mutated))


# DefaultPrice and TariffMessage have no bounded field (no length limit, no integer).
MUTATION_CASES: Final = [(topic, kind) for topic in SCHEMAS for kind in MUTATIONS
                         if kind != "out_of_range" or topic == "session_cost"]


@settings(PROPS, max_examples=40)
@pytest.mark.parametrize(("topic", "kind"), MUTATION_CASES)
@given(data=st.data())
def test_invalid_mutation_raises_decode_error(topic: str, kind: str, data: st.DataObject) -> None:
    path, payload = data.draw(invalid_message(topic, kind))
    error = _must_fail(topic, payload)
    assert error.reason, path


@settings(PROPS, max_examples=50)
@given(case=valid_message("session_cost"),
       decimals=st.one_of(st.sampled_from((19, -1, 2**63, 2**64, -(2**64))),
                          st.integers(min_value=19), st.integers(max_value=-1)),
       where=st.sampled_from(("session", "price")))
def test_decimals_outside_0_to_18_raise(case: tuple[dict[str, Any], bytes], decimals: int,
                                        where: str) -> None:
    doc = copy.deepcopy(case[0])
    if where == "session":
        doc["currency"]["decimals"] = decimals
    else:
        price = {"currency": {"decimals": decimals}, "value": {"value": 1}}
        doc["charging_price"] = [*doc.get("charging_price", []), {"price": price}]
    _must_fail("session_cost", json.dumps(doc).encode())


@PROPS
@given(beat=st.one_of(st.sampled_from((-1, 2**64, -(2**63), 2**65)),
                      st.integers(max_value=-1), st.integers(min_value=2**64)))
def test_heartbeat_out_of_uint64_raises(beat: int) -> None:
    _must_fail("heartbeat", str(beat).encode())


@PROPS
@given(value=st.one_of(st.floats(), st.text(max_size=5).map(json.dumps), st.just("null"),
                       st.just("true"), st.just("[1]"), st.just("{\"id\": 1}")))
def test_heartbeat_not_an_integer_raises(value: float | str) -> None:
    payload = value.encode() if isinstance(value, str) else repr(value).encode()
    _must_fail("heartbeat", payload)


@FEWER
@given(topic=st.sampled_from(tuple(SCHEMAS)), data=st.data())
def test_truncated_payload_raises_decode_error(topic: str, data: st.DataObject) -> None:
    _, payload = data.draw(valid_message(topic))
    cut = data.draw(st.integers(1, len(payload) - 1))  # zero bytes: a cleared message
    _must_fail(topic, payload[:cut])


@FEWER
@given(topic=st.sampled_from(tuple(SCHEMAS)), data=st.data())
def test_byte_flips_raise_only_decode_error(topic: str, data: st.DataObject) -> None:
    _, payload = data.draw(valid_message(topic))
    flipped = bytearray(payload)
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, len(flipped) - 1))
        flipped[pos] ^= data.draw(st.integers(1, 255))
    _decoded_or_error(topic, bytes(flipped))


# ---- the display never chokes on a valid message -----------------------------------------------

CONFIGS: Final = (
    DisplayConfig(),
    DisplayConfig(languages=["de", "en"], currency=""),
    DisplayConfig(languages=["fr"], currency="JPY"),
)


def _render(model: DisplayModel, state: State) -> View:
    view = model.view(state, "2026-05-06T12:00:00Z")
    decoded = msgspec.json.decode(encode_view(view))
    assert decoded["screen"] == view.screen
    return view


@FEWER
@given(
    data=st.data(),
    config=st.sampled_from(CONFIGS),
    before=st.lists(st.sampled_from(("default_price", "tariff_message", "session_cost",
                                     "link_up", "link_down", "tick")), max_size=4),
    now=st.floats(0, 1e9),
)
def test_display_renders_any_valid_session_cost(
    data: st.DataObject, config: DisplayConfig, before: list[str], now: float
) -> None:
    model = DisplayModel(config)
    state = State()
    for step in before:  # some history: earlier prices, tariffs, sessions, link changes
        if step in SCHEMAS:
            _, earlier = data.draw(valid_message(step, html_safe=True))
            message = decode(step, earlier)
            assert not isinstance(message, Heartbeat | Cleared)
            state = model.update(state, message, now)
        else:
            event = Tick() if step == "tick" else LinkChanged(up=step == "link_up")
            state = model.update(state, event, now)
        _render(model, state)
        now += 30.0
    doc, payload = data.draw(valid_message("session_cost", html_safe=True))
    msg = decode("session_cost", payload)
    assert isinstance(msg, SessionCost)
    before_state, state = state, model.update(state, msg, now)
    view = _render(model, state)
    previous = before_state.session
    same = previous is not None and previous.session_id == msg.session_id
    late = before_state.running and not same and msg.status == "Finished"
    behind_final = same and before_state.final and msg.status != "Finished"
    if late or behind_final:  # late news never replaces what is on screen
        assert state.session is previous
        assert state.late_results == before_state.late_results + 1
        return
    assert state.session is msg
    if view.screen == "tariff":  # another driver's tariff held over the running session
        assert same and before_state.tariff is not None
        return
    assert view.total is not None
    assert view.total.value == expected_total(doc)
    assert view.session_id == doc["session_id"]
    assert view.status == doc["status"]
    if doc["status"] == "Finished":
        assert view.screen == "finished"
    later = model.update(state, Tick(), now + 1e6)  # hold timers expire
    _render(model, later)


def test_display_renders_html_with_marked_section() -> None:
    payload = msgspec.json.encode({
        "session_id": "s1", "currency": {"code": "EUR", "decimals": 2}, "status": "Running",
        "message": [{"content": "<![x[ 0.59 EUR/kWh ]]>", "format": "HTML", "language": "en"}],
    })
    msg = decode("session_cost", payload)
    assert isinstance(msg, SessionCost)
    model = DisplayModel(DisplayConfig())
    view = model.view(model.update(State(link_up=True), msg, 0.0))
    assert view.message is not None and "<" not in view.message
