"""Hypothesis strategies and a validator for the JSON Schema subset EVerest's AsyncAPI uses.

- `instances(schema)`: values the schema accepts (unknown object members included where
  `additionalProperties` allows them, in any order).
- `validator(schema)`: draft-07 validation where an integer is a JSON number without a fraction
  (`1.0` is not one: EVerest's codec never writes it, and the agent refuses it) and a string is
  Unicode text (no lone surrogate: what invalid UTF-8 read with `surrogateescape`, or a lone
  `\ud800` escape, leave behind).
- `sites(doc, schema)`: every declared value inside a document, with its schema, for mutations;
  `misses(schema)`: values close to what `schema` accepts that it rejects; `lookalikes(schema)`:
  the schema's member names with anything below them.

A keyword outside the subset raises: a new constraint in the spec must not be ignored silently.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

import jsonschema
from hypothesis import strategies as st

from tests.asyncapi import Schema

ANNOTATIONS: Final = frozenset({"description", "title", "examples"})
KEYWORDS: Final = ANNOTATIONS | {
    "type", "enum", "anyOf", "properties", "required", "additionalProperties", "items",
    "minItems", "maxItems", "minimum", "maximum", "minLength", "maxLength", "format",
}
JSON_SCALARS: Final = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
)
JSON: Final = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=4,
)
# Integers at the edges of C++ and JSON number types, and far beyond.
EDGE_INTS: Final = (0, -1, 1, 2**31 - 1, -(2**31), 2**31, 2**53 + 1, 2**63 - 1, -(2**63), 2**63,
                    2**64 - 1, 2**64, -(2**64), 10**30, -(10**40))
MAX_ITEMS: Final = 3  # arrays are kept short: length adds run time, not cases


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


DATE_TIMES: Final = st.builds(
    _rfc3339,
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1),
                 timezones=st.one_of(st.just(UTC), st.integers(-14 * 60, 14 * 60).map(
                     lambda m: timezone(timedelta(minutes=m))))),
)


def _check(schema: Schema) -> None:
    unknown = schema.keys() - KEYWORDS
    if unknown:
        raise ValueError(f"JSON Schema keywords not supported here: {sorted(unknown)}")


def instances(schema: Schema, hints: Mapping[str, st.SearchStrategy[Any]] | None = None,
              ) -> st.SearchStrategy[Any]:
    """Values `schema` accepts; `hints`: per property name, more values to draw from (valid ones:
    e.g. realistic texts random text would almost never hit)."""
    _check(schema)
    hints = hints or {}
    if "anyOf" in schema:
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        return st.one_of([instances({**rest, **alt}, hints) for alt in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kinds = schema.get("type")
    if kinds is None:
        return JSON
    if isinstance(kinds, list):
        return st.one_of([instances({**schema, "type": kind}, hints) for kind in kinds])
    strategy: st.SearchStrategy[Any] = _TYPES[kinds](schema, hints)
    return strategy


def _integers(schema: Schema, _: Mapping[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[int]:
    lo, hi = schema.get("minimum"), schema.get("maximum")
    edges = [i for i in (*EDGE_INTS, lo, hi)
             if i is not None and (lo is None or i >= lo) and (hi is None or i <= hi)]
    return st.one_of(st.integers(lo, hi), st.sampled_from(edges))


def _strings(schema: Schema, _: Mapping[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[str]:
    if schema.get("format") == "date-time":
        return DATE_TIMES
    lo, hi = schema.get("minLength", 0), schema.get("maxLength")
    text = st.text(min_size=lo, max_size=lo + 24 if hi is None else min(hi, lo + 40))
    if hi is None:
        return text
    return st.one_of(text, st.characters().map(lambda c: c * hi))  # right at the limit


def _arrays(schema: Schema, hints: Mapping[str, st.SearchStrategy[Any]],
            ) -> st.SearchStrategy[list[Any]]:
    lo = schema.get("minItems", 0)
    hi = min(schema.get("maxItems", lo + MAX_ITEMS), lo + MAX_ITEMS)
    return st.lists(instances(schema.get("items", {}), hints), min_size=lo, max_size=hi)


def _members(schema: Schema, hints: Mapping[str, st.SearchStrategy[Any]],
             ) -> dict[str, st.SearchStrategy[Any]]:
    return {name: st.one_of(instances(sub, hints), hints[name]) if name in hints
            else instances(sub, hints) for name, sub in schema.get("properties", {}).items()}


def _objects(schema: Schema, hints: Mapping[str, st.SearchStrategy[Any]],
             ) -> st.SearchStrategy[dict[str, Any]]:
    members = _members(schema, hints)
    required = schema.get("required", [])
    plain = st.fixed_dictionaries({k: members[k] for k in required},
                                  optional={k: v for k, v in members.items() if k not in required})
    if schema.get("additionalProperties", True) is False:
        return plain
    unknown = st.dictionaries(st.text(max_size=12).filter(lambda k: k not in members), JSON,
                              max_size=3)
    # Unknown members anywhere in the object, not only at the end.
    return st.tuples(plain, unknown, st.randoms(use_true_random=False)).map(
        lambda t: dict(t[2].sample(list({**t[0], **t[1]}.items()), len(t[0]) + len(t[1]))))


_TYPES: Final[dict[str, Any]] = {
    "null": lambda _s, _h: st.none(),
    "boolean": lambda _s, _h: st.booleans(),
    "integer": _integers,
    "string": _strings,
    "array": _arrays,
    "object": _objects,
}

def _text(_: object, value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")  # refuses lone surrogates
    except UnicodeEncodeError:
        return False
    return True


_STRICT_TYPES: Final = jsonschema.Draft7Validator.TYPE_CHECKER.redefine_many({
    "integer": lambda _, value: isinstance(value, int) and not isinstance(value, bool),
    "string": _text,
})
# extend() has no annotations in types-jsonschema.
_Validator: Final = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    jsonschema.Draft7Validator, type_checker=_STRICT_TYPES)


def validator(schema: Schema) -> jsonschema.protocols.Validator:
    """A draft-07 validator of `schema` with strict integers and strings (formats unchecked)."""
    checked: jsonschema.protocols.Validator = _Validator(schema)
    return checked


@dataclass(frozen=True)
class Site:
    """A declared value inside a document: where it is, its schema, whether it is required."""

    path: tuple[str | int, ...]
    schema: Schema
    required: bool


def sites(doc: Any, schema: Schema, path: tuple[str | int, ...] = ()) -> Iterator[Site]:
    """Every value below `doc` that `schema` declares (unknown members are not sites)."""
    if isinstance(doc, dict):
        required = schema.get("required", [])
        for name, sub in schema.get("properties", {}).items():
            if name in doc:
                yield Site((*path, name), sub, name in required)
                yield from sites(doc[name], sub, (*path, name))
    elif isinstance(doc, list) and "items" in schema:
        for i, item in enumerate(doc):
            yield Site((*path, i), schema["items"], False)
            yield from sites(item, schema["items"], (*path, i))


def lookalikes(schema: Schema) -> st.SearchStrategy[Any]:
    """Values with the schema's own member names (and array shapes) but anything below them."""
    if "properties" in schema:
        return st.fixed_dictionaries({}, optional={
            name: st.one_of(JSON, lookalikes(sub)) for name, sub in schema["properties"].items()})
    if "items" in schema:
        return st.lists(st.one_of(JSON, lookalikes(schema["items"])), max_size=MAX_ITEMS)
    return JSON


# One value of every JSON type but null, for "a value of another type".
OTHER_TYPES: Final[tuple[Any, ...]] = ("1", 1, 1.5, True, [], {}, [1], {"value": 1})
_MISSES: dict[int, tuple[Schema, dict[str, tuple[Any, ...]]]] = {}


def misses(schema: Schema) -> dict[str, tuple[Any, ...]]:
    """Values next to what `schema` accepts that it rejects, by kind: `null`, another `type`,
    another spelling of an `enum` value, one past a `bound` (number or length)."""
    if id(schema) in _MISSES:
        return _MISSES[id(schema)][1]
    enum = [v for value in schema.get("enum", ())
            for v in (value.lower(), value.upper(), f"{value} ", value[:-1])]
    bound: list[Any] = []
    if "minimum" in schema:
        bound += [schema["minimum"] - 1, schema["minimum"] - 2**40, -(2**64)]
    if "maximum" in schema:
        bound += [schema["maximum"] + 1, schema["maximum"] + 2**40, 2**64]
    if schema.get("minLength", 0) > 0:
        bound.append("x" * (schema["minLength"] - 1))
    if "maxLength" in schema:
        bound.append("x" * (schema["maxLength"] + 1))
    check = validator(schema)
    kinds = {"null": (None,), "type": OTHER_TYPES, "enum": tuple(enum), "bound": tuple(bound)}
    found = {kind: rejected for kind, values in kinds.items()
             if (rejected := tuple(v for v in values if not check.is_valid(v)))}
    _MISSES[id(schema)] = (schema, found)  # the schema kept alive: its id stays its own
    return found
