"""Finds the module behind an output `type`: built-ins by name, third parties by entry point."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, cast

from agent.outputs.base import OutputConfig, OutputKind

if TYPE_CHECKING:
    from importlib.metadata import EntryPoints

ENTRY_POINT_GROUP = "cost_agent.outputs"

# Imported only when configured, so a board without pyserial/gpiod never loads their code.
BUILTIN: dict[str, str] = {
    "file": "agent.outputs.file",
    "console": "agent.outputs.console",
    "serial": "agent.outputs.serial",
    "gpio": "agent.outputs.gpio",
    "exec": "agent.outputs.exec",
    "mqtt": "agent.outputs.mqtt",
    "web": "agent.outputs.web",
    "hd44780": "agent.outputs.hd44780.driver",
}


class UnknownOutput(LookupError):
    """No built-in output and no installed plugin has this type name."""


def load_kind(type_name: str) -> OutputKind:
    """Import the module (or plugin object) that implements output `type_name`."""
    module_name = BUILTIN.get(type_name)
    if module_name is not None:
        return cast(OutputKind, importlib.import_module(module_name))
    plugins = _plugins()
    for ep in plugins:
        if ep.name == type_name:
            kind = ep.load()
            config = getattr(kind, "CONFIG", None)
            if config is None or not callable(getattr(kind, "create", None)):
                raise UnknownOutput(
                    f"plugin {type_name!r} ({ep.value}) lacks CONFIG or create()")
            # The table's `type` selects the plugin and must also be its config's tag.
            if not (isinstance(config, type) and issubclass(config, OutputConfig)
                    and config.__struct_config__.tag == type_name):
                raise UnknownOutput(f"plugin {type_name!r} ({ep.value}): CONFIG must subclass "
                                    f"OutputConfig with tag={type_name!r}")
            return cast(OutputKind, kind)
    known = sorted(set(BUILTIN) | {ep.name for ep in plugins})
    raise UnknownOutput(f"unknown output type {type_name!r} (known: {', '.join(known)})")


def _plugins() -> EntryPoints:
    # importlib.metadata pulls in email, zipfile, csv...: 2.9 MiB of RSS on a board
    # (bench/lazy_imports.py), only for a type that is not built in.
    from importlib.metadata import entry_points

    return entry_points(group=ENTRY_POINT_GROUP)
