"""Third-party outputs via the `cost_agent.outputs` entry points, and the built-in kinds."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, cast

import msgspec
import pytest

from agent.model.view import View, encode_view
from agent.outputs.base import Output, OutputConfig
from agent.outputs.registry import ENTRY_POINT_GROUP, UnknownOutput, load_kind

PLUGIN_SRC = Path(__file__).parent / "plugin_pkg"


@pytest.fixture(scope="session")
def plugin_installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Install tests/plugin_pkg as importlib.metadata sees an installed distribution.

    A directory with `cost_agent_testsink-0.1.0.dist-info/` (METADATA, entry_points.txt)
    goes on sys.path next to the package source: the same discovery path as a pip install,
    without building anything.
    """
    site = tmp_path_factory.mktemp("site")
    info = site / "cost_agent_testsink-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: cost-agent-testsink\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\ntestsink = cost_agent_testsink\n"
        "testbroken = cost_agent_testsink:NOT_AN_OUTPUT\n")
    added = [str(site), str(PLUGIN_SRC)]
    sys.path[:0] = added
    try:
        yield
    finally:
        for entry in added:
            sys.path.remove(entry)
        sys.modules.pop("cost_agent_testsink", None)


def convert(table: dict[str, Any]) -> OutputConfig:
    return msgspec.convert(table, load_kind(table["type"]).CONFIG)


@pytest.mark.usefixtures("plugin_installed")
def test_entry_point_is_discovered() -> None:
    names = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert {"testsink", "testbroken"} <= names


@pytest.mark.usefixtures("plugin_installed")
def test_plugin_receives_its_own_table_and_shows_views(tmp_path: Path) -> None:
    target = tmp_path / "views.jsonl"
    kind = load_kind("testsink")
    config = convert({"type": "testsink", "name": "lobby", "path": str(target)})
    assert isinstance(config, kind.CONFIG) and isinstance(config, OutputConfig)
    assert config.name == "lobby"
    views = [View(screen="price", link="up", prices=["0.35 EUR/kWh"]),
             View(screen="charging", link="up", session_id="s", status="Running")]

    async def main() -> None:
        out = cast(Output, kind.create(config))
        await out.open()
        for view in views:
            await out.show(view)
        await out.close()
    asyncio.run(main())
    assert target.read_bytes() == b"".join(encode_view(v) + b"\n" for v in views)


@pytest.mark.usefixtures("plugin_installed")
@pytest.mark.parametrize(("table", "needle"), [
    ({"type": "testsink"}, "Object missing required field `path`"),
    ({"type": "testsink", "path": "/x", "colour": "red"}, "Object contains unknown field `colour`"),
    ({"type": "testsink", "path": 7}, "Expected `str`, got `int` - at `$.path`"),
    ({"type": "testsink", "path": "/x", "fail": "always"}, "at `$.fail`"),
    ({"type": "testsink", "path": "/x", "retry_max_s": "soon"}, "at `$.retry_max_s`"),
])
def test_misconfigured_plugin_error_names_the_key(table: dict[str, Any], needle: str) -> None:
    with pytest.raises(msgspec.ValidationError) as err:
        convert(table)
    assert needle in str(err.value)


@pytest.mark.usefixtures("plugin_installed")
@pytest.mark.parametrize("stage", ["open", "show"])
def test_failing_plugin_raises_like_any_output(tmp_path: Path, stage: str) -> None:
    kind = load_kind("testsink")
    out = cast(Output, kind.create(convert({"type": "testsink", "path": str(tmp_path / "v"),
                                            "fail": stage})))

    async def main() -> None:
        await out.open()
        await out.show(View(screen="idle", link="up"))
    with pytest.raises((OSError, RuntimeError), match="testsink: "):
        asyncio.run(main())
    asyncio.run(out.close())


@pytest.mark.usefixtures("plugin_installed")
def test_entry_point_without_config_or_create_is_rejected() -> None:
    with pytest.raises(UnknownOutput, match=r"plugin 'testbroken' .* lacks CONFIG or create"):
        load_kind("testbroken")


@pytest.mark.usefixtures("plugin_installed")
def test_unknown_type_lists_plugins_too() -> None:
    with pytest.raises(UnknownOutput) as err:
        load_kind("lcd")
    assert "unknown output type 'lcd'" in str(err.value)
    assert "testsink" in str(err.value) and "serial" in str(err.value)


@pytest.mark.parametrize(("type_name", "table"), [
    ("serial", {"device": "/dev/ttyS1"}),
    ("gpio", {"lines": {"session_active": 17, "link_down": 27}}),
    ("exec", {"argv": ["/usr/libexec/update-display", "--fast"]}),
])
def test_builtin_kinds_follow_the_interface(type_name: str, table: dict[str, Any]) -> None:
    kind = load_kind(type_name)
    config = msgspec.convert({"type": type_name, **table}, kind.CONFIG)
    assert type(config).__struct_config__.tag == type_name
    out = kind.create(config)
    for method in ("open", "show", "close"):
        assert asyncio.iscoroutinefunction(getattr(out, method))
    with pytest.raises(msgspec.ValidationError, match=r"Invalid value .other. - at `\$\.type`"):
        msgspec.convert({"type": "other", **table}, kind.CONFIG)


def test_hardware_libraries_load_only_when_used() -> None:
    code = ("import sys\n"
            "import agent.outputs.serial, agent.outputs.gpio, agent.outputs.exec\n"
            "loaded = {'gpiod', 'serial'} & set(sys.modules)\n"
            "assert not loaded, loaded\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False,
                          env={"PYTHONPATH": ":".join(sys.path)}, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
