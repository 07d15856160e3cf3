"""Struct kinds: every configuration table refuses unknown keys; every message is immutable."""

from __future__ import annotations

import typing
from collections.abc import Iterator

import msgspec
import pytest

from agent.everest import session_cost
from agent.outputs.registry import BUILTIN, load_kind
from agent.settings.config import Config, ConfigError, parse
from agent.structs import Record, Settings


def tables(struct: type[msgspec.Struct], seen: set[type] | None = None
           ) -> Iterator[type[msgspec.Struct]]:
    """`struct` and every Struct type reachable through its fields' annotations."""
    seen = set() if seen is None else seen
    if struct in seen:
        return
    seen.add(struct)
    yield struct
    for hint in typing.get_type_hints(struct, include_extras=True).values():
        for arg in _flatten(hint):
            if isinstance(arg, type) and issubclass(arg, msgspec.Struct):
                yield from tables(arg, seen)


def _flatten(hint: object) -> Iterator[object]:
    yield hint
    for arg in typing.get_args(hint):
        yield from _flatten(arg)


ROOTS: list[type[msgspec.Struct]] = [Config, *(load_kind(k).CONFIG for k in BUILTIN)]
CONFIG_TABLES = sorted({t for root in ROOTS
                        for t in tables(root)}, key=lambda t: t.__qualname__)


@pytest.mark.parametrize("table", CONFIG_TABLES, ids=lambda t: t.__qualname__)
def test_every_config_table_is_immutable_and_refuses_unknown_keys(table: type[msgspec.Struct]
                                                                ) -> None:
    assert issubclass(table, Settings)
    options = table.__struct_config__
    assert options.frozen and options.forbid_unknown_fields


def test_a_misspelt_key_in_a_nested_table_names_it() -> None:
    with pytest.raises(ConfigError, match=r"mqtt.*hots"):
        parse('[mqtt]\nhots = "localhost"\n')


MESSAGES = [session_cost.DefaultPrice, session_cost.TariffMessage, session_cost.SessionCost,
            session_cost.Heartbeat]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda t: t.__qualname__)
def test_decoded_messages_are_immutable_records(message: type[msgspec.Struct]) -> None:
    for part in tables(message):
        assert issubclass(part, Record), part
        options = part.__struct_config__
        assert options.frozen and not options.gc
