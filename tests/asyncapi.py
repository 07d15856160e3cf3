"""EVerest's AsyncAPI files as plain JSON Schemas, for tests that generate and judge payloads.

`AsyncApi(folder, *patches)` reads the YAML files of one folder, applies JSON merge patches
(RFC 7396) at JSON pointers (RFC 6901) named `file.yaml#/pointer`, and hands out schemas with
every `$ref` (local or to a sibling file) replaced by its target. AsyncAPI 3.0 schemas are JSON
Schema draft-07, where keywords beside a `$ref` are ignored: so are they here (EVerest writes
`type: object` beside references to string enums).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import yaml

Schema = dict[str, Any]
# shared/reference/ lies beside the repository (here and in CI's fresh clone).
REFERENCE: Final = Path(__file__).resolve().parents[2] / "shared" / "reference" / "everest-api"


def merge(target: Any, patch: Any) -> Any:
    """RFC 7396: `patch` merged into `target` (a null member removes the key)."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge(merged.get(key), value)
    return merged


def _steps(pointer: str) -> list[str]:
    if not pointer:
        return []
    if not pointer.startswith("/"):
        raise ValueError(f"not a JSON pointer: {pointer!r}")
    return [s.replace("~1", "/").replace("~0", "~") for s in pointer[1:].split("/")]


class AsyncApi:
    """The YAML files of `folder`, patched; schemas by reference, `$ref`s inlined."""

    def __init__(self, folder: Path, *patches: Mapping[str, Schema]) -> None:
        self._folder = folder
        self._docs: dict[str, Any] = {}
        for patch in patches:
            for where, change in patch.items():
                file, _, pointer = where.partition("#")
                *path, last = _steps(pointer)
                parent = self._at(file, path)
                if last not in parent:  # a stale patch must not pass silently
                    raise KeyError(f"{where}: no such node")
                parent[last] = merge(parent[last], change)

    def _at(self, file: str, path: list[str]) -> Any:
        if file not in self._docs:
            self._docs[file] = yaml.safe_load((self._folder / file).read_text(encoding="utf-8"))
        node = self._docs[file]
        for step in path:
            node = node[int(step) if isinstance(node, list) else step]
        return node

    def schema(self, ref: str, base: str = "") -> Schema:
        """The node at `ref` (`file#/pointer`, or `#/pointer` in `base`), `$ref`s inlined."""
        file, _, pointer = ref.partition("#")
        file = file or base
        node: Schema = self._inline(self._at(file, _steps(pointer)), file)
        return node

    def _inline(self, node: Any, file: str) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return self.schema(node["$ref"], file)
            return {key: self._inline(value, file) for key, value in node.items()}
        if isinstance(node, list):
            return [self._inline(value, file) for value in node]
        return node

    def payloads(self, file: str) -> dict[str, Schema]:
        """Channel address (`e2m/session_cost`...) -> payload schema, for each channel of `file`."""
        channels = self._at(file, ["channels"])
        return {
            channel["address"]: self.schema(message["$ref"], file)["payload"]
            for channel in channels.values()
            for message in channel["messages"].values()
        }
