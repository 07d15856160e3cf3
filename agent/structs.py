"""The two kinds of msgspec Struct the agent declares, with their options named once.

A class says what it is by what it derives from, instead of repeating options on ~40 classes.
A leaf module: every layer may use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    # For type checkers only: msgspec inherits `frozen` at run time, but a dataclass_transform
    # without frozen_default would call every subclass mutable (typing has it from 3.12).
    from typing_extensions import dataclass_transform
else:
    def dataclass_transform(**_: object) -> Callable[[type], type]:
        return lambda cls: cls


@dataclass_transform(frozen_default=True, field_specifiers=(msgspec.field,))
class Record(msgspec.Struct, frozen=True, gc=False):
    """An immutable value: a decoded EVerest message, an event, a part of a view.

    gc=False: the cycle collector never tracks them (a station decodes thousands a second).
    Safe because a Record only holds atoms, strings, and lists/tuples of other Records: it
    can never be part of a reference cycle.
    """


@dataclass_transform(frozen_default=True, field_specifiers=(msgspec.field,))
class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A table of the configuration file: immutable, and a misspelt key is an error.

    msgspec does not inherit `kw_only`: a table whose required keys follow optional ones
    declares `kw_only=True` itself (so keys are only ever given by name, as in TOML).
    """
