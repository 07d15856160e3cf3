"""GPIO output: condition mapping through a fake line backend; the libgpiod v2 adapter."""

from __future__ import annotations

import asyncio
import glob
import os
import sys
import types
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest

from agent.model.view import Total, View
from agent.outputs import gpio
from agent.outputs.gpio import GpioConfig, GpioOutput, conditions
from agent.outputs.gpio_backend import CONSUMER, open_gpiod


class FakeLines:
    """Records what the output does to its lines; `level` is the logical value per offset."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, tuple[int, ...], bool, str]] = []
        self.calls: list[tuple[str, dict[int, bool]]] = []
        self.level: dict[int, bool] = {}
        self.fail_open: Exception | None = None
        self.released = 0

    def __call__(self, chip: str, offsets: Sequence[int], *, active_low: bool,
                 consumer: str) -> FakeLines:
        if self.fail_open is not None:
            raise self.fail_open
        self.requests.append((chip, tuple(offsets), active_low, consumer))
        self.level = dict.fromkeys(offsets, False)
        return self

    def set(self, values: Mapping[int, bool]) -> None:
        assert set(values) <= set(self.level), "set on a line that was not requested"
        self.calls.append(("set", dict(values)))
        self.level.update(values)

    def release(self) -> None:
        self.calls.append(("release", {}))
        self.released += 1


def cfg(**keys: Any) -> GpioConfig:
    return msgspec.convert({"type": "gpio", **keys}, GpioConfig)


ALL_LINES = {"session_active": 17, "charging": 27, "idle": 22, "finished": 23,
             "link_down": 24, "price_available": 25, "unavailable": 5}
PRICE = View(screen="price", link="up", prices=["0.35 EUR/kWh"])
CHARGING = View(screen="charging", link="up", session_id="s", status="Running",
                total=Total(1, 2, "EUR", "0.01 EUR"))
IDLE = View(screen="idle", link="up", session_id="s", status="Idle")
FINISHED = View(screen="finished", link="down", session_id="s", status="Finished")
UNAVAILABLE = View(screen="unavailable", link="down")


@pytest.mark.parametrize(("view", "active"), [
    (PRICE, {"price_available"}),
    (View(screen="tariff", link="up", preview=["ab 0,30 EUR"]), {"price_available"}),
    (View(screen="price", link="up", message="Free charging today"), {"price_available"}),
    (View(screen="price", link="up"), set()),
    (View(screen="price", link="down"), {"link_down"}),
    (CHARGING, {"session_active", "charging"}),
    (IDLE, {"session_active", "idle"}),
    (FINISHED, {"session_active", "finished", "link_down"}),
    (View(screen="charging", link="up", message="m", prices=["p"]), {"charging"}),
    (UNAVAILABLE, {"unavailable", "link_down"}),
])
def test_conditions(view: View, active: set[str]) -> None:
    assert {name for name, on in conditions(view).items() if on} == active


def run(output: GpioOutput, *views: View, close: bool = True) -> None:
    async def main() -> None:
        await output.open()
        for view in views:
            await output.show(view)
        if close:
            await output.close()
    asyncio.run(main())


def test_lines_requested_once_and_set_on_every_view() -> None:
    fake = FakeLines()
    out = GpioOutput(cfg(chip="gpiochip1", active_low=True,
                         lines={"session_active": 17, "link_down": 27}), opener=fake)
    run(out, PRICE, CHARGING, FINISHED, close=False)
    assert fake.requests == [("/dev/gpiochip1", (17, 27), True, "cost-agent")]
    assert fake.calls == [("set", {17: False, 27: False}), ("set", {17: True, 27: False}),
                          ("set", {17: True, 27: True})]
    run(out, UNAVAILABLE, close=False)  # open() while open is a no-op
    assert len(fake.requests) == 1
    assert fake.level == {17: False, 27: True}


def test_close_drives_inactive_then_releases_and_reopen_requests_again() -> None:
    fake = FakeLines()
    out = GpioOutput(cfg(lines=ALL_LINES), opener=fake)
    run(out, FINISHED)
    assert fake.calls[-2:] == [("set", dict.fromkeys(ALL_LINES.values(), False)),
                               ("release", {})]
    assert not any(fake.level.values())
    run(out, CHARGING)
    assert len(fake.requests) == 2 and fake.released == 2
    assert fake.requests[0][0] == "/dev/gpiochip0"
    asyncio.run(out.close())  # closing twice is harmless
    assert fake.released == 2


def test_pulse_strobes_after_each_update() -> None:
    fake = FakeLines()
    out = GpioOutput(cfg(lines={"charging": 3}, pulse={"line": 4, "ms": 1}), opener=fake)
    run(out, CHARGING, IDLE, close=False)
    assert fake.requests[0][1] == (3, 4)
    assert fake.calls == [
        ("set", {3: True}), ("set", {4: True}), ("set", {4: False}),
        ("set", {3: False}), ("set", {4: True}), ("set", {4: False}),
    ]


def test_pulse_only() -> None:
    fake = FakeLines()
    run(GpioOutput(cfg(pulse={"line": 9}), opener=fake), PRICE)
    assert fake.calls[:2] == [("set", {9: True}), ("set", {9: False})]


def test_open_failure_raises_and_show_before_open_raises() -> None:
    fake = FakeLines()
    fake.fail_open = PermissionError(13, "Permission denied", "/dev/gpiochip0")
    out = GpioOutput(cfg(lines={"charging": 1}), opener=fake)
    with pytest.raises(PermissionError):
        asyncio.run(out.open())
    with pytest.raises(RuntimeError, match="not requested"):
        asyncio.run(out.show(CHARGING))


def test_close_survives_a_failing_backend() -> None:
    class Broken(FakeLines):
        def set(self, values: Mapping[int, bool]) -> None:
            raise OSError(19, "No such device")

    broken = Broken()
    out = GpioOutput(cfg(lines={"charging": 1}), opener=broken)
    with pytest.raises(OSError, match="No such device"):
        run(out, CHARGING, close=False)
    asyncio.run(out.close())
    assert broken.released == 1


@pytest.mark.parametrize(("keys", "needle"), [
    ({}, "lines: map at least one condition"),
    ({"lines": {"charging": 1, "idle": 1}}, "lines.idle: line 1 is already used by charging"),
    ({"lines": {"plugged": 1}}, "$.lines"),
    ({"lines": {"charging": -1}}, "$.lines"),
    ({"lines": {"charging": 1}, "pulse": {"line": 1}}, "pulse.line: line 1 is already used"),
    ({"lines": {"charging": 1}, "pulse": {"line": 2, "ms": 0}}, "$.pulse.ms"),
    ({"lines": {"charging": 1}, "pulse": {"line": 2, "len": 5}}, "unknown field `len`"),
    ({"lines": {"charging": 1}, "active_low": "yes"}, "$.active_low"),
    ({"lines": {"charging": 1}, "consumer": "x"}, "unknown field `consumer`"),
])
def test_config_errors_name_the_key(keys: dict[str, Any], needle: str) -> None:
    with pytest.raises(msgspec.ValidationError) as err:
        cfg(**keys)
    assert needle in str(err.value)


def test_module_interface_uses_libgpiod_adapter() -> None:
    out = gpio.create(cfg(lines={"charging": 1}))
    assert gpio.CONFIG is GpioConfig
    assert out._opener is open_gpiod


# --- the libgpiod v2 adapter -------------------------------------------------------------


@pytest.fixture
def fake_gpiod(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """A stand-in `gpiod` module recording request_lines() calls (API shape of libgpiod v2)."""
    calls: list[dict[str, Any]] = []

    class Request:
        def __init__(self) -> None:
            self.values: list[dict[int, str]] = []
            self.released = False

        def set_values(self, values: dict[int, str]) -> None:
            self.values.append(values)

        def release(self) -> None:
            if self.released:
                raise RuntimeError("already released")
            self.released = True

    def request_lines(path: str, config: dict[Any, Any], consumer: str | None = None,
                      **kw: Any) -> Request:
        request = Request()
        calls.append({"path": path, "config": config, "consumer": consumer, "kw": kw,
                      "request": request})
        return request

    line = types.SimpleNamespace(
        Direction=types.SimpleNamespace(OUTPUT="OUTPUT"),
        Value=types.SimpleNamespace(ACTIVE="ACTIVE", INACTIVE="INACTIVE"))
    module = types.SimpleNamespace(request_lines=request_lines, line=line,
                                   LineSettings=lambda **kw: ("settings", kw))
    monkeypatch.setitem(sys.modules, "gpiod", module)
    monkeypatch.setitem(sys.modules, "gpiod.line", line)
    yield calls


def test_gpiod_adapter_requests_outputs(fake_gpiod: list[dict[str, Any]]) -> None:
    backend = open_gpiod("/dev/gpiochip0", [17, 27], active_low=True)
    (call,) = fake_gpiod
    assert call["path"] == "/dev/gpiochip0" and call["consumer"] == CONSUMER
    assert call["config"] == {(17, 27): ("settings", {
        "direction": "OUTPUT", "active_low": True, "output_value": "INACTIVE"})}
    backend.set({17: True, 27: False})
    assert call["request"].values == [{17: "ACTIVE", 27: "INACTIVE"}]
    backend.release()
    backend.release()  # idempotent
    assert call["request"].released


def test_gpiod_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gpiod", None)  # import gpiod -> ImportError
    with pytest.raises(RuntimeError, match=r"cost-agent\[gpio\]"):
        open_gpiod("/dev/gpiochip0", [1], active_low=False)


def test_gpiod_v1_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    line = types.SimpleNamespace(Direction=None, Value=None)
    monkeypatch.setitem(sys.modules, "gpiod", types.SimpleNamespace(__version__="1.6.3",
                                                                    line=line))
    monkeypatch.setitem(sys.modules, "gpiod.line", line)
    with pytest.raises(RuntimeError, match="libgpiod v2"):
        open_gpiod("/dev/gpiochip0", [1], active_low=False)


def test_real_gpiod_bindings_accept_the_request(tmp_path: Path) -> None:
    """The installed libgpiod v2 bindings accept our call shape; a missing chip -> OSError."""
    gpiod = pytest.importorskip("gpiod", reason="libgpiod v2 bindings (gpiod) not installed")
    if not hasattr(gpiod, "request_lines"):
        pytest.skip(f"installed gpiod {gpiod.__version__} is not libgpiod v2")
    with pytest.raises(OSError):
        open_gpiod(str(tmp_path / "gpiochip9"), [1, 2], active_low=True)


# --- real hardware: a gpio-sim chip ----------------------------------------------------------

GPIO_SIM = Path("/sys/kernel/config/gpio-sim")


def _real_gpio_skip_reason() -> str | None:
    try:
        import gpiod  # noqa: F401
    except ImportError:
        return "libgpiod v2 bindings (gpiod) not installed: pip install 'cost-agent[gpio]'"
    if not GPIO_SIM.is_dir():
        chips = glob.glob("/dev/gpiochip*")
        return (f"no gpio-sim configfs at {GPIO_SIM} (modprobe gpio-sim; mount -t configfs "
                f"none /sys/kernel/config); GPIO chips present: {chips or 'none'}")
    if os.geteuid() != 0:
        return "creating a gpio-sim chip needs root"
    return None


@pytest.fixture
def sim_chip() -> Iterator[tuple[str, Path]]:
    """A live 8-line gpio-sim chip: (its /dev path, its sysfs directory of line values)."""
    reason = _real_gpio_skip_reason()
    if reason:
        pytest.skip(reason)
    dev = GPIO_SIM / f"cost-agent-test-{os.getpid()}"
    bank = dev / "bank0"
    bank.mkdir(parents=True)
    try:
        (bank / "num_lines").write_text("8")
        (dev / "live").write_text("1")
        chip_name = (bank / "chip_name").read_text().strip()
        dev_name = (dev / "dev_name").read_text().strip()
        yield f"/dev/{chip_name}", Path("/sys/devices/platform", dev_name, chip_name)
    finally:
        if (dev / "live").exists():
            (dev / "live").write_text("0")
        bank.rmdir()
        dev.rmdir()


def test_libgpiod_on_gpio_sim(sim_chip: tuple[str, Path]) -> None:
    import gpiod

    chip, sysfs = sim_chip

    def level(offset: int) -> str:
        return (sysfs / f"sim_gpio{offset}" / "value").read_text().strip()

    out = gpio.create(cfg(chip=chip, active_low=True, lines={"charging": 1, "link_down": 2}))

    async def main() -> None:
        await out.open()
        await out.show(CHARGING)
        assert (level(1), level(2)) == ("0", "1")  # active_low: active = electrically low
        await out.show(UNAVAILABLE)
        assert (level(1), level(2)) == ("1", "0")
        await out.close()
        with gpiod.Chip(chip) as handle:  # released: nobody holds the lines any more
            assert not handle.get_line_info(1).used
    asyncio.run(main())


def test_repaint_drives_every_line_again() -> None:
    fake = FakeLines()
    out = GpioOutput(cfg(lines={"charging": 3, "link_down": 6}, pulse={"line": 4, "ms": 1}),
                     opener=fake)

    async def main() -> None:
        await out.open()
        await out.show(CHARGING)
        fake.level = dict.fromkeys(fake.level, False)  # the latch lost its state
        fake.calls.clear()
        await out.repaint(CHARGING)
    asyncio.run(main())
    assert fake.calls == [("set", {3: True, 6: False}), ("set", {4: True}), ("set", {4: False})]
    assert fake.level == {3: True, 6: False, 4: False}
    assert cfg(lines={"charging": 3}).refresh_s == 30
