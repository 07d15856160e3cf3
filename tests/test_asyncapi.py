"""tests/asyncapi.py and tests/schemagen.py: the spec is read, patched and generated faithfully."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, given, settings

from tests.asyncapi import REFERENCE, AsyncApi, merge
from tests.schemagen import instances, misses, validator

API = """
channels:
  price:
    address: e2m/price
    messages:
      price: {$ref: '#/components/messages/price'}
components:
  messages:
    price:
      payload: {$ref: '#/components/schemas/Price'}
  schemas:
    Price:
      type: object
      required: [amount]
      properties:
        amount: {type: object, $ref: 'money.yaml#/components/schemas/Amount'}
        "a/b~c": {type: string}
"""
MONEY = """
components:
  schemas:
    Amount: {type: integer, minimum: 0}
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "api.yaml").write_text(API, encoding="utf-8")
    (tmp_path / "money.yaml").write_text(MONEY, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(("target", "patch", "result"), [  # RFC 7396, appendix A
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ({"a": "foo"}, "bar", "bar"),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
])
def test_merge_patch(target: Any, patch: Any, result: Any) -> None:
    assert merge(target, patch) == result


def test_references_across_files_are_inlined_and_their_siblings_ignored(folder: Path) -> None:
    assert AsyncApi(folder).payloads("api.yaml") == {"e2m/price": {
        "type": "object", "required": ["amount"],
        "properties": {"amount": {"type": "integer", "minimum": 0}, "a/b~c": {"type": "string"}},
    }}


def test_a_patch_applies_wherever_its_definition_is_used(folder: Path) -> None:
    api = AsyncApi(folder, {"money.yaml#/components/schemas/Amount": {"maximum": 9}},
                   {"api.yaml#/components/schemas/Price/properties/a~1b~0c": {"maxLength": 2}})
    price = api.schema("api.yaml#/components/schemas/Price")
    assert price["properties"]["amount"] == {"type": "integer", "minimum": 0, "maximum": 9}
    assert price["properties"]["a/b~c"] == {"type": "string", "maxLength": 2}


def test_a_patch_naming_nothing_fails(folder: Path) -> None:
    with pytest.raises(KeyError, match="Ammount"):
        AsyncApi(folder, {"money.yaml#/components/schemas/Ammount": {"maximum": 9}})


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="../shared/reference is not beside the clone")
def test_everest_payloads_have_no_reference_left() -> None:
    payloads = AsyncApi(REFERENCE).payloads("session_cost_consumer_API.yaml")
    assert set(payloads) == {"e2m/default_price", "e2m/tariff_message", "e2m/session_cost",
                             "e2m/heartbeat", "m2e/communication_check"}
    assert "$ref" not in json.dumps(payloads)


# ---- schemagen ---------------------------------------------------------------------------------

ID: Final = {"type": "integer", "minimum": -3, "maximum": 70000}
KIND: Final = {"type": "string", "enum": ["Energy", "Time"]}
NAME: Final = {"type": "string", "minLength": 1, "maxLength": 300}
TAG: Final = {"type": ["object", "null"], "properties": {"name": NAME}}
SAMPLE: Final = {
    "type": "object", "required": ["id", "kind"], "additionalProperties": True,
    "properties": {
        "id": ID, "kind": KIND, "tags": {"type": "array", "items": TAG}, "on": {"type": "boolean"},
        "when": {"type": "string", "anyOf": [{"format": "date-time"}, {"maxLength": 0}]},
    },
}


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(instances(SAMPLE))
def test_generated_instances_are_valid(doc: Any) -> None:
    assert validator(SAMPLE).is_valid(doc)


def test_misses_are_next_to_the_schema() -> None:
    assert {-4, 70001} <= set(misses(ID)["bound"])
    assert {"energy", "Time "} <= set(misses(KIND)["enum"])
    assert misses(ID)["null"] == misses(KIND)["null"] == (None,)
    others: tuple[Any, ...] = (1.5, "1", True, [], {})
    assert all(value in misses(ID)["type"] for value in others)
    assert set(misses(TAG)) == {"type"}  # null is allowed there
    assert {"", "x" * 301} <= set(misses(NAME)["bound"])


def test_integers_and_strings_are_strict() -> None:
    assert not validator({"type": "integer"}).is_valid(1.0)
    assert not validator({"type": "integer"}).is_valid(True)
    assert not validator({"type": "string"}).is_valid("\udcb0")


def test_unknown_keyword_is_refused() -> None:
    with pytest.raises(ValueError, match="pattern"):
        instances({"type": "string", "pattern": "^[A-Z]{3}$"})
