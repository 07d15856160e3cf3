"""The decoder of the session cost consumer API judges payloads as EVerest's AsyncAPI spec does.

Payloads are generated from and judged by the spec's own schemas (shared/reference/everest-api:
session_cost_consumer_API.yaml and the files it refers to), read as they are and corrected only
by the named patches below, each citing what EVerest really does (shared/reference/README.md)
or what the agent deliberately does differently.

- Every payload the spec allows decodes, and every value it declares survives.
- The agent accepts a payload exactly when the spec does: random bytes, random JSON, payloads
  with the spec's member names but anything below them, truncated and bit-flipped payloads, and
  valid payloads with one value broken against the spec's own required/enum/bounds/types. A
  refusal is always DecodeError, with the topic and a reason; nothing else is ever raised.
- Any sequence of valid messages goes through DisplayModel.update, view and encode_view, and the
  total shown is the sum of the chunks.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any, Final, get_args

import msgspec
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from agent.everest.session_cost import (
    CLEARED,
    TOPICS,
    Cleared,
    DecodeError,
    Heartbeat,
    SessionCost,
    decode,
)
from agent.model.currencies import CurrencyCode
from agent.model.display import DisplayModel
from agent.model.state import DisplayConfig, LinkChanged, State, Tick
from agent.model.view import View, encode_view
from tests.asyncapi import REFERENCE, AsyncApi, Schema
from tests.schemagen import JSON, instances, lookalikes, misses, sites, validator

if not REFERENCE.is_dir():  # beside the clone (scripts/arm.sh mounts it into the ARM userland)
    pytest.skip(f"{REFERENCE} (EVerest's AsyncAPI files) is not here", allow_module_level=True)

PROPS: Final = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)
# For properties whose examples are expensive to generate or narrow in what they check.
FEWER: Final = settings(PROPS, max_examples=100)

CONSUMER_API: Final = "session_cost_consumer_API.yaml"
SCHEMAS: Final = "session_cost_API.yaml#/components/schemas/"
NULLABLE: Final = {"type": ["object", "null"]}

# Where EVerest's C++ differs from the AsyncAPI text (README, "Facts about what EVerest really
# publishes"), as JSON merge patches (RFC 7396) at the definitions they correct.
EVEREST_FACTS: Final[dict[str, Schema]] = {
    # "an IdlePrice, ChargingPriceComponent or SessionCostChunk with no member set is written as
    # JSON null, also as an array element"
    SCHEMAS + "IdlePrice": NULLABLE,
    SCHEMAS + "ChargingPriceComponent": NULLABLE,
    SCHEMAS + "SessionCostChunk": NULLABLE,
    # "MoneyAmount.value is a C++ int32_t; Currency.decimals an int32_t"
    SCHEMAS + "MoneyAmount/properties/value": {"minimum": -(2**31), "maximum": 2**31 - 1},
    SCHEMAS + "Currency/properties/decimals": {"maximum": 2**31 - 1},
    # "next_period.timestamp_from can be the empty string"
    SCHEMAS + "NextPeriodPrice/properties/timestamp_from": {
        "format": None, "anyOf": [{"format": "date-time"}, {"maxLength": 0}]},
    # "Unknown fields must be tolerated (additionalProperties: true)": DefaultPrice says false.
    CONSUMER_API + "#/components/schemas/DefaultPrice": {"additionalProperties": True},
    # Heartbeat: "a JSON integer from a C++ size_t counter ... wraps to 0 after 2^64-1"
    CONSUMER_API + "#/components/schemas/HeartBeatId": {"minimum": 0, "maximum": 2**64 - 1},
}
# What the agent refuses by design of what EVerest could send (agent/everest/session_cost.py).
AGENT_RULES: Final[dict[str, Schema]] = {
    # 10**decimals must fit an int64; no ISO 4217 currency has more than 4 decimals.
    SCHEMAS + "Currency/properties/decimals": {"maximum": 18},
}
# What the agent never decodes: to it an unknown member, accepted whatever it holds.
NOT_DECODED: Final[dict[str, Schema]] = {
    SCHEMAS + "SessionCost/properties": {"id_tag": None},  # the driver's token never enters
}
SENT: Final = AsyncApi(REFERENCE, EVEREST_FACTS, AGENT_RULES).payloads(CONSUMER_API)
ACCEPTED: Final = AsyncApi(REFERENCE, EVEREST_FACTS, AGENT_RULES, NOT_DECODED).payloads(
    CONSUMER_API)
JUDGES: Final = {address: validator(schema) for address, schema in ACCEPTED.items()}

# Texts that random text would almost never be: HTML to reduce to text (malformed `<![` marked
# sections once crashed html.parser), language tags as EVerest sends them.
HTML_PIECES: Final = ("<b>", "</b>", "<br>", "<p>", "</p>", "<script>x</script>", "&amp;",
                      "&#8364;", "&euro;", "<!-- c -->", "<a href='u'>", "<", ">", "&", "<!x",
                      "<!DOCTYPE html>", "<div", "<![", "€", "Preis ", "\n\t ")
HINTS: Final = {
    "content": st.lists(st.one_of(st.sampled_from(HTML_PIECES), st.text(max_size=5)),
                        max_size=8).map("".join),
    "language": st.sampled_from(("en", "EN", "de", "de-DE", "fr", "en_US", "", " nl ")),
}


def schema_of(topic: str) -> Schema:
    """The payload schema of an EVerest-to-module topic, as the agent accepts it."""
    return ACCEPTED[f"e2m/{topic}"]


@st.composite
def encoded(draw: st.DrawFn, doc: Any) -> bytes:
    """`doc` as JSON bytes, in one of the spellings a producer may use."""
    style = draw(st.sampled_from(("everest", "compact", "ascii", "padded", "msgspec")))
    if style == "everest":  # "JSON printed with 4-space indentation and keys in alphabetical order"
        return json.dumps(doc, indent=4, sort_keys=True, ensure_ascii=False).encode()
    if style == "msgspec":
        return msgspec.json.encode(doc)
    if style == "padded":
        return b" \n" + json.dumps(doc, indent=1, ensure_ascii=False).encode() + b"\n "
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=style == "ascii").encode()


@cache
def docs(topic: str) -> st.SearchStrategy[Any]:
    """Documents of `topic` the spec allows."""
    return instances(SENT[f"e2m/{topic}"], HINTS)


def valid_message(topic: str) -> st.SearchStrategy[tuple[Any, bytes]]:
    """A document of `topic` the spec allows and its JSON bytes."""
    return docs(topic).flatmap(lambda d: st.tuples(st.just(d), encoded(d)))


def _refuse(token: str) -> float:
    raise ValueError(f"not JSON: {token}")


def _finite(token: str) -> float:
    value = float(token)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"out of range: {token}")
    return value


def spec_accepts(topic: str, payload: bytes) -> bool:
    """Whether `payload` is JSON (RFC 8259) that the topic's schema accepts. The agent skips
    unknown members unread: bytes that are not UTF-8 only count in the members it declares."""
    if topic not in TOPICS:
        return False
    try:
        text = payload.decode("utf-8", errors="surrogateescape")
        doc = json.loads(text, parse_constant=_refuse, parse_float=_finite)
    except (ValueError, RecursionError):
        return False
    # RFC 8259 leaves an escaped surrogate without its pair ("\ud800") undefined; EVerest's
    # nlohmann::json refuses to parse one (so never sends it), as msgspec does, in any member.
    # (Read again with bytes that are not UTF-8 replaced: the first reading maps them to
    # surrogates of its own.)
    if _lone_surrogate(json.loads(payload.decode("utf-8", errors="replace"))):
        return False
    return bool(JUDGES[f"e2m/{topic}"].is_valid(doc))


def _lone_surrogate(doc: object) -> bool:
    """Any string (key or value) in `doc` holds a UTF-16 surrogate an escape left unpaired."""
    if isinstance(doc, str):
        return any("\ud800" <= ch <= "\udfff" for ch in doc)
    if isinstance(doc, dict):
        return any(_lone_surrogate(k) or _lone_surrogate(v) for k, v in doc.items())
    if isinstance(doc, list):
        return any(_lone_surrogate(v) for v in doc)
    return False


def judged_as_spec(topic: str, payload: bytes) -> object:
    """decode(), which must accept `payload` exactly when the spec does and refuse it only with
    DecodeError(topic, reason). A zero-byte payload clears the topic."""
    if not payload and topic in TOPICS:
        assert decode(topic, payload) is CLEARED
        return CLEARED
    accepted = spec_accepts(topic, payload)
    try:
        message = decode(topic, payload)
    except DecodeError as exc:
        assert exc.topic == topic
        assert exc.reason.strip()
        assert topic in str(exc)
        assert not accepted, f"the spec accepts what the agent refuses: {exc}"
        return exc
    assert accepted, f"the agent accepts what the spec refuses: {payload[:200]!r}"
    return message


def declared(doc: Any, schema: Schema) -> Any:
    """`doc` with only the members `schema` declares, at every depth: what a decoder keeps."""
    if isinstance(doc, dict) and "properties" in schema:
        members = schema["properties"]
        return {k: declared(v, members[k]) for k, v in doc.items() if k in members}
    if isinstance(doc, list) and "items" in schema:
        return [declared(item, schema["items"]) for item in doc]
    return doc


def expected_total(doc: dict[str, Any]) -> int:
    """The session total as the sum of the chunks' cost values in the JSON document."""
    return sum(c["cost"]["value"] for c in doc.get("cost_chunks", []) if c and "cost" in c)


# ---- the spec's payloads decode ----------------------------------------------------------------


def test_the_agent_decodes_every_topic_evereset_publishes() -> None:
    assert set(TOPICS) == {address.removeprefix("e2m/") for address in SENT
                           if address.startswith("e2m/")}


@PROPS
@pytest.mark.parametrize("topic", TOPICS)
@given(data=st.data())
def test_valid_payload_decodes_with_every_declared_value(topic: str, data: st.DataObject) -> None:
    doc, payload = data.draw(valid_message(topic))
    message = decode(topic, payload)
    if topic == "heartbeat":
        assert message == Heartbeat(doc)
        return
    assert msgspec.to_builtins(message) == declared(doc, schema_of(topic))
    if topic == "session_cost":
        assert isinstance(message, SessionCost)
        assert message.total == expected_total(doc)
        assert not hasattr(message, "id_tag")


def test_every_currency_of_the_spec_decodes_with_every_accepted_decimals() -> None:
    currency = schema_of("session_cost")["properties"]["currency"]["properties"]
    codes, decimals = currency["code"]["enum"], currency["decimals"]
    assert tuple(codes) == get_args(CurrencyCode)  # the agent's list is the spec's, in order
    for code in codes:
        for places in range(decimals["minimum"], decimals["maximum"] + 1):
            currency_doc = {"code": code, "decimals": places}
            payload = msgspec.json.encode(
                {"session_id": "s", "status": "Idle", "currency": currency_doc})
            message = decode("session_cost", payload)
            assert isinstance(message, SessionCost)
            assert (message.currency.code, message.currency.decimals) == (code, places)


# ---- anything else is refused, with DecodeError only ------------------------------------------

ALL_TOPICS: Final = (*TOPICS, "no_such_topic")


@PROPS
@given(topic=st.sampled_from(ALL_TOPICS), payload=st.binary(max_size=300))
def test_random_bytes_are_judged_as_the_spec(topic: str, payload: bytes) -> None:
    judged_as_spec(topic, payload)


@PROPS
@given(topic=st.sampled_from(ALL_TOPICS), value=JSON)
def test_random_json_is_judged_as_the_spec(topic: str, value: Any) -> None:
    judged_as_spec(topic, json.dumps(value).encode())


@PROPS
@given(data=st.data(), topic=st.sampled_from(TOPICS))
def test_lookalikes_are_judged_as_the_spec(data: st.DataObject, topic: str) -> None:
    judged_as_spec(topic, json.dumps(data.draw(lookalikes(schema_of(topic)))).encode())


@pytest.mark.parametrize("topic", ALL_TOPICS)
@pytest.mark.parametrize(
    "payload",
    [b"", b" ", b"null", b"{}", b"[]", b"\xff\xfe", b"{\"messages\": [", b"[" * 100_000,
     b"{\"messages\":[],\"x\":" + b"[" * 100_000 + b"]" * 100_000 + b"}",
     b"{\"session_id\": \"\\ud800\"}", b"NaN", b"1e400", b"\"\\u0000\"", b"1.0", b"-0"],
)
def test_pathological_payloads_are_judged_as_the_spec(topic: str, payload: bytes) -> None:
    judged_as_spec(topic, payload)


def _mutation_kinds(schema: Schema) -> set[str]:
    """The mutations some value of `schema` admits (see `mutated`)."""
    kinds = set(misses(schema))
    if schema.get("required"):
        kinds.add("drop_required")
    items = [schema["items"]] if "items" in schema else []
    for sub in (*schema.get("properties", {}).values(), *items, *schema.get("anyOf", ())):
        kinds |= _mutation_kinds(sub)
    return kinds


MUTATION_CASES: Final = sorted((topic, kind) for topic in TOPICS
                               for kind in _mutation_kinds(schema_of(topic)))


@st.composite
def mutants(draw: st.DrawFn, topic: str, kind: str) -> list[bytes]:
    """A valid document broken in one place, once for every place `kind` applies to: a required
    member dropped, or a value replaced by one of its `misses` of that kind."""
    box = [draw(docs(topic))]  # the document in a list: its root has a parent too
    found = [s for s in sites(box, {"items": schema_of(topic)})
             if (s.required if kind == "drop_required" else kind in misses(s.schema))]
    assume(found)
    payloads = []
    for site in found:
        broken = json.loads(json.dumps(box))  # a deep copy
        *path, last = site.path
        parent: Any = broken
        for step in path:
            parent = parent[step]
        if kind == "drop_required":
            del parent[last]
        else:
            parent[last] = draw(st.sampled_from(misses(site.schema)[kind]))
        payloads.append(draw(encoded(broken[0])))
    return payloads


@settings(PROPS, max_examples=25)
@pytest.mark.parametrize(("topic", "kind"), MUTATION_CASES)
@given(data=st.data())
def test_payload_broken_against_the_spec_raises(topic: str, kind: str,
                                                data: st.DataObject) -> None:
    for payload in data.draw(mutants(topic, kind)):
        assert not spec_accepts(topic, payload)
        assert isinstance(judged_as_spec(topic, payload), DecodeError)


@FEWER
@given(topic=st.sampled_from(TOPICS), data=st.data())
def test_truncated_payload_is_judged_as_the_spec(topic: str, data: st.DataObject) -> None:
    _, payload = data.draw(valid_message(topic))
    assume(len(payload) > 1)
    judged_as_spec(topic, payload[:data.draw(st.integers(1, len(payload) - 1))])


@FEWER
@given(topic=st.sampled_from(TOPICS), data=st.data())
def test_byte_flips_are_judged_as_the_spec(topic: str, data: st.DataObject) -> None:
    _, payload = data.draw(valid_message(topic))
    flipped = bytearray(payload)
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, len(flipped) - 1))
        flipped[pos] ^= data.draw(st.integers(1, 255))
    judged_as_spec(topic, bytes(flipped))


# ---- the display never chokes on a valid message -----------------------------------------------

CONFIGS: Final = (
    DisplayConfig(),
    DisplayConfig(languages=["de", "en"], currency=""),
    DisplayConfig(languages=["fr"], currency="JPY"),
)
HISTORY: Final = ("default_price", "tariff_message", "session_cost", "link_up", "link_down",
                  "tick")


def _render(model: DisplayModel, state: State) -> View:
    view = model.view(state, "2026-05-06T12:00:00Z")
    decoded = msgspec.json.decode(encode_view(view))
    assert decoded["screen"] == view.screen
    return view


@FEWER
@given(data=st.data(), config=st.sampled_from(CONFIGS),
       before=st.lists(st.sampled_from(HISTORY), max_size=4), now=st.floats(0, 1e9))
def test_display_renders_any_valid_session_cost(
    data: st.DataObject, config: DisplayConfig, before: list[str], now: float
) -> None:
    model = DisplayModel(config)
    state = State()
    for step in before:  # some history: earlier prices, tariffs, sessions, link changes
        if step in TOPICS:
            message = decode(step, data.draw(valid_message(step))[1])
            assert not isinstance(message, Heartbeat | Cleared)
            state = model.update(state, message, now)
        else:
            event = Tick() if step == "tick" else LinkChanged(up=step == "link_up")
            state = model.update(state, event, now)
        _render(model, state)
        now += 30.0
    doc, payload = data.draw(valid_message("session_cost"))
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
