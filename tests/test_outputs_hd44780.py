"""hd44780 output: what the glass shows, replayed through an HD44780 model from the wires."""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import msgspec
import pytest

from agent.model.view import Total, View
from agent.outputs.hd44780.bus import DEFAULT_PINS, PinMap, pcf8574_chunks
from agent.outputs.hd44780.device import I2C_SLAVE
from agent.outputs.hd44780.driver import Hd44780Config, Hd44780Output
from agent.outputs.hd44780.encode import GEOMETRIES, Hd44780Encoder, screen_rows
from agent.settings.config import ConfigError, parse
from tests.hd44780_model import (
    EURO_ART,
    Clock,
    GpioWires,
    Hd44780Model,
    Pcf8574Wires,
    art,
)

REPO = Path(__file__).resolve().parent.parent
GPIO_LINES = {"rs": 5, "e": 6, "d4": 13, "d5": 19, "d6": 26, "d7": 21}
MJKDZ = {"rs": 6, "rw": 5, "e": 4, "backlight": 7, "d4": 0, "d5": 1, "d6": 2, "d7": 3}


class FakeI2c:
    """The adapter device behind the same open/ioctl/write/close calls, wired to a model."""

    def __init__(self, wires: Pcf8574Wires, address: int = 0x27) -> None:
        self.wires, self.address = wires, address
        self.selected: int | None = None
        self.opened: list[tuple[str, int]] = []
        self.threads: set[str] = set()
        self.fail_after: int | None = None  # deliver this many bytes of the next write, then EIO
        self.missing = False

    def open(self, path: str, flags: int) -> int:
        if self.missing:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        self.opened.append((path, flags))
        return 42

    def ioctl(self, fd: int, request: int, arg: int) -> object:
        assert (fd, request) == (42, I2C_SLAVE)
        self.selected = arg
        return 0

    def write(self, fd: int, data: bytes) -> int:
        self.threads.add(threading.current_thread().name)
        if self.selected != self.address:
            raise OSError(errno.ENXIO, "No such device or address")
        if self.fail_after is not None:
            self.wires.feed(data[:self.fail_after])
            self.fail_after = None
            raise OSError(errno.EIO, "Input/output error")
        self.wires.feed(data)
        return len(data)

    def close(self, fd: int) -> None:
        self.selected = None


def no_sleep(seconds: float) -> None:
    """The controller's waits are not modelled; tests run without them."""


def config(**keys: Any) -> Hd44780Config:
    return msgspec.convert({"type": "hd44780", **keys}, Hd44780Config)


def i2c_display(columns: int = 20, rows: int = 4, rom: str = "A02", pins: dict[str, int] | None
                = None, **keys: Any) -> tuple[Hd44780Output, Hd44780Model, Pcf8574Wires, FakeI2c]:
    model = Hd44780Model(columns, rows, "A02" if rom == "A02" else "A00")
    wires = Pcf8574Wires(model, pins)
    fake = FakeI2c(wires, keys.get("address", 0x27))
    if pins is not None:
        keys["pins"] = pins
    out = Hd44780Output(config(columns=columns, rows=rows, rom=rom, template="{prices}", **keys),
                        i2c_io=fake, sleep=no_sleep)
    return out, model, wires, fake


def lines_view(*rows: str, screen: Literal["price", "charging"] = "price") -> View:
    return View(screen=screen, link="up", prices=list(rows))


async def shown(out: Hd44780Output, *views: View) -> None:
    await out.open()
    for view in views:
        await out.show(view)


def glass_rows(rows: Sequence[str], columns: int) -> list[str]:
    return [row.ljust(columns) for row in rows]


@pytest.mark.parametrize(("columns", "rows"), GEOMETRIES)
def test_every_geometry_shows_every_row_in_full(columns: int, rows: int) -> None:
    out, model, _, _ = i2c_display(columns, rows)
    text = [(f"r{r}" + "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"[r:])[:columns]
            for r in range(rows)]
    asyncio.run(shown(out, lines_view(*text)))
    assert model.glass() == text
    assert model.errors == []


@pytest.mark.parametrize(("rom", "text", "glass"), [
    ("A02", "Größe 5,00 €", "Größe 5,00 €"),
    ("A00", "Größe 5,00 €", "Grösse 5,00 €"),
    ("A02", "Crème brûlée", "Crème brûlée"),
    ("A00", "Crème brûlée", "Creme brulee"),
    ("A00", "¥100 a\\b~", "¥100 a?b?"),
    ("A02", "¥100 a\\b~", "¥100 a\\b~"),
    ("A02", "£3 Ørsted", "£3 Orsted"),
    ("A00", "£3 mañana", "GBP3 mañana"),
    ("A00", "0,35 €/kWh…", "0,35 €/kWh..."),
    ("A02", "“Danke” – ok", '"Danke" - ok'),
])
def test_rom_characters_glyphs_and_transliteration(rom: str, text: str, glass: str) -> None:
    out, model, _, _ = i2c_display(20, 2, rom)
    asyncio.run(shown(out, lines_view(text, "x")))
    assert model.glass() == glass_rows([glass, "x"], 20)
    assert model.errors == []


def test_the_euro_glyph_is_drawn_once_in_cgram_for_every_euro_sign() -> None:
    out, model, _, _ = i2c_display(16, 2, "A00")
    asyncio.run(shown(out, lines_view("1 € 2 € 3 €", "€€€€")))
    assert model.glass() == glass_rows(["1 € 2 € 3 €", "€€€€"], 16)
    assert model.cgram_writes == 8  # one glyph, eight pixel rows
    slot = model.ddram[0x02]
    assert art(model.cgram[slot * 8:slot * 8 + 8]) == EURO_ART


def test_more_than_eight_glyphs_show_the_first_eight_and_question_marks() -> None:
    glyphs = {chr(0x2460 + i): (i + 1,) * 7 + (0,) for i in range(9)}  # ①..⑨
    model = Hd44780Model(16, 2, "A02", {art(g): ch for ch, g in glyphs.items()})
    wires = Pcf8574Wires(model)
    encoder = Hd44780Encoder(16, 2, "A02", glyphs)
    text = "".join(glyphs)
    for data, _ in pcf8574_chunks(encoder.update([text, ""]), DEFAULT_PINS, True):
        wires.feed(data)
    assert model.glass() == glass_rows([text[:8] + "?", ""], 16)
    # Once some leave the screen, their slots are reused for the ones that did not fit.
    for data, _ in pcf8574_chunks(encoder.update(["⑨①", "②"]), DEFAULT_PINS, True):
        wires.feed(data)
    assert model.glass() == glass_rows(["⑨①", "②"], 16)
    assert model.errors == []


def test_an_update_rewrites_only_the_changed_characters_without_a_clear() -> None:
    out, model, _, _ = i2c_display(20, 4)
    before = ["Total 12,34 €", "5.123 kWh", "0,35 €/kWh", "Danke"]
    after = ["Total 12,39 €", "5.223 kWh", "0,35 €/kWh", "Danke!"]
    asyncio.run(shown(out, lines_view(*before)))
    clears, writes = model.clears, model.ddram_writes
    asyncio.run(out.show(lines_view(*after)))
    assert model.glass() == glass_rows(after, 20)
    assert model.ddram_writes - writes == 3  # "9", "2", "!"
    assert model.clears == clears
    writes = model.ddram_writes
    asyncio.run(out.show(lines_view(*after)))
    assert model.ddram_writes == writes


def test_shorter_text_blanks_what_it_no_longer_covers() -> None:
    out, model, _, _ = i2c_display(16, 2)
    asyncio.run(shown(out, lines_view("a long first row", "second"), lines_view("short")))
    assert model.glass() == [*glass_rows(["short"], 16), " " * 16]


def test_open_initialises_a_display_left_in_8_bit_mode_with_old_content() -> None:
    out, model, _, _ = i2c_display(20, 4)
    model.ddram = [ord("X")] * 0x80  # what a previous program left, still in 8-bit mode
    asyncio.run(shown(out, lines_view("fresh")))
    assert model.glass() == glass_rows(["fresh", "", "", ""], 20)
    assert (model.eight_bit, model.two_line, model.display_on) == (False, True, True)


@pytest.mark.parametrize("rs_latched_on", ["first", "second"])
@pytest.mark.parametrize("high", range(16))
@pytest.mark.parametrize("rs", [False, True])
@pytest.mark.parametrize("how", ["reopen", "repaint"])
def test_reinit_recovers_from_a_reset_in_the_middle_of_a_nibble_pair(
        rs_latched_on: Literal["first", "second"], high: int, rs: bool, how: str) -> None:
    out, model, _, _ = i2c_display(20, 4)
    model.rs_latched_on = rs_latched_on
    view = lines_view("Total 1,00 €", "line 2", "line 3", "line 4")
    asyncio.run(shown(out, view))
    model.strobe(rs, False, high)  # a glitch: the controller now waits for a second nibble
    if how == "reopen":
        asyncio.run(out.close())
        asyncio.run(shown(out, view))
    else:
        asyncio.run(out.repaint(view))
    assert model.glass() == glass_rows(["Total 1,00 €", "line 2", "line 3", "line 4"], 20)
    assert model.pending is None and not model.eight_bit


def test_repaint_brings_back_a_power_cycled_display_without_a_clear() -> None:
    out, model, _, _ = i2c_display(20, 4)
    view = lines_view("Total 1,00 €", "", "", "bye")
    asyncio.run(shown(out, view))
    model.power_cycle()  # blank, display off, 8-bit mode, CGRAM garbage
    clears = model.clears
    asyncio.run(out.repaint(view))
    assert model.glass() == glass_rows(["Total 1,00 €", "", "", "bye"], 20)
    assert model.clears == clears  # no blink every refresh_s
    assert model.errors == []


def test_a_write_failing_mid_pair_is_followed_by_a_full_resync() -> None:
    out, model, _, fake = i2c_display(20, 2)
    asyncio.run(shown(out, lines_view("one", "two")))
    fake.fail_after = 3 * 5  # five nibbles: the third byte stops half way
    with pytest.raises(OSError):
        asyncio.run(out.show(lines_view("three", "four")))
    assert model.pending is not None
    asyncio.run(out.close())
    asyncio.run(shown(out, lines_view("three", "four")))
    assert model.glass() == glass_rows(["three", "four"], 20)


def test_i2c_opens_the_adapter_addresses_the_backpack_and_writes_off_the_loop() -> None:
    out, model, _, fake = i2c_display(20, 4, address=0x3F, device="/dev/i2c-7")
    asyncio.run(shown(out, lines_view("hi")))
    assert fake.opened == [("/dev/i2c-7", os.O_RDWR | os.O_CLOEXEC)]
    assert fake.selected == 0x3F
    assert threading.current_thread().name not in fake.threads
    assert model.glass()[0].rstrip() == "hi"
    asyncio.run(out.close())


def test_a_missing_adapter_fails_open() -> None:
    out, _, _, fake = i2c_display()
    fake.missing = True
    with pytest.raises(FileNotFoundError):
        asyncio.run(out.open())


def test_the_other_common_pin_map_with_an_active_low_backlight() -> None:
    out, model, wires, _ = i2c_display(16, 2, pins=MJKDZ, backlight_active_low=True)
    asyncio.run(shown(out, lines_view("mjkdz", "ok")))
    assert model.glass() == glass_rows(["mjkdz", "ok"], 16)
    assert wires.backlight is False  # lit: the transistor is driven by a low pin


@pytest.mark.parametrize(("mode", "screen", "lit"), [
    ("always", "price", True), ("always", "charging", True),
    ("session", "price", False), ("session", "charging", True),
])
def test_backlight_by_screen(mode: str, screen: Literal["price", "charging"], lit: bool) -> None:
    out, _, wires, _ = i2c_display(16, 2, backlight=mode)
    asyncio.run(shown(out, lines_view("x", screen=screen)))
    assert wires.backlight is lit


def test_backlight_follows_the_screen_even_when_the_text_is_unchanged() -> None:
    out, model, wires, _ = i2c_display(16, 2, backlight="session")
    asyncio.run(shown(out, lines_view("same", screen="charging")))
    assert wires.backlight
    asyncio.run(out.show(lines_view("same", screen="price")))
    assert not wires.backlight
    assert model.glass()[0].rstrip() == "same"


@pytest.mark.parametrize(("columns", "rows"), [(16, 2), (20, 4), (40, 2)])
def test_gpio_bus_in_4_bit_mode(columns: int, rows: int) -> None:
    model = Hd44780Model(columns, rows, "A00")
    lines = {**GPIO_LINES, "backlight": 12}
    gpio = GpioWires(model, lines)
    out = Hd44780Output(config(bus="gpio", chip="gpiochip1", lines=lines, columns=columns,
                               rows=rows, template="{total}\n{message}", backlight="session"),
                        gpio_opener=gpio, sleep=no_sleep)
    view = View(screen="charging", link="up", session_id="s", status="Running",
                total=Total(1234, 2, "EUR", "12,34 €"), message="Danke schön")
    asyncio.run(shown(out, view))
    assert gpio.requests == [("/dev/gpiochip1", (5, 6, 13, 19, 26, 21, 12), False, "cost-agent")]
    assert model.glass()[:2] == glass_rows(["12,34 €", "Danke schön"], columns)
    assert gpio.get("backlight")
    asyncio.run(out.repaint(view))
    assert model.glass()[:2] == glass_rows(["12,34 €", "Danke schön"], columns)
    asyncio.run(out.close())
    assert gpio.released == 1
    assert model.errors == []


def test_the_template_is_the_line_protocols_wrapped_to_the_geometry() -> None:
    view = View(screen="charging", link="up", total=Total(1234, 2, "EUR", "12,34 €"),
                energy_wh=5123, prices=["0,35 €/kWh", "idle 0,10 €/min"],
                message="Thank you for charging with us")
    rows = screen_rows(view, "{total}\n{energy_kwh}\n{prices}\n{message}", 20, 4, "A00")
    assert rows == glass_rows(["12,34 €", "5.123 kWh", "0,35 €/kWh", "idle 0,10 €/min"], 20)
    rows = screen_rows(view, "{message}", 16, 2, "A02")
    assert rows == glass_rows(["Thank you for", "charging with us"], 16)


def timed_session(out: Hd44780Output, model: Hd44780Model, clock: Clock) -> None:
    """Open, updates, a glitch and a power cycle each followed by a repaint, a re-open."""
    euro = lines_view("Total 1,00 €", "5.000 kWh", "0,35 €/kWh", "Danke")

    async def run() -> None:
        await shown(out, euro, lines_view("Total 1,20 €", "5.600 kWh", "0,35 €/kWh"))
        model.strobe(False, False, 0x3, clock.now + 1.0)
        clock.now += 1.0
        await out.repaint(euro)
        model.power_cycle(clock.now)
        clock.now += 1.0
        await out.repaint(euro)
        await out.close()
        await shown(out, lines_view("x"), euro)
    asyncio.run(run())
    assert model.glass() == glass_rows(["Total 1,00 €", "5.000 kWh", "0,35 €/kWh", "Danke"], 20)


@pytest.mark.parametrize("bus_hz", [100_000, 400_000])
def test_i2c_never_strobes_the_controller_while_it_is_busy(bus_hz: int) -> None:
    clock = Clock()
    model = Hd44780Model(20, 4, "A02")
    fake = FakeI2c(Pcf8574Wires(model, clock=clock, byte_s=9 / bus_hz))
    out = Hd44780Output(config(template="{prices}"), i2c_io=fake, sleep=clock.sleep)
    timed_session(out, model, clock)
    assert model.errors == []


def test_gpio_never_strobes_the_controller_while_it_is_busy() -> None:
    clock = Clock()
    model = Hd44780Model(20, 4, "A02")
    gpio = GpioWires(model, GPIO_LINES, clock)
    out = Hd44780Output(config(bus="gpio", lines=GPIO_LINES, template="{prices}"),
                        gpio_opener=gpio, sleep=clock.sleep)
    timed_session(out, model, clock)
    assert model.errors == []


def test_the_model_notices_missing_waits() -> None:
    clock = Clock()
    model = Hd44780Model(20, 4, "A02")
    fake = FakeI2c(Pcf8574Wires(model, clock=clock, byte_s=9 / 100_000))
    out = Hd44780Output(config(template="{prices}"), i2c_io=fake, sleep=no_sleep)
    asyncio.run(shown(out, lines_view("x")))
    assert any("too early" in error for error in model.errors)


BAD = [
    ("address = 0x80", "output[0].address"),
    ("address = 2", "output[0].address"),
    ('rom = "A01"', "output[0].rom"),
    ("columns = 20\nrows = 3", "output[0].rows"),
    ("columns = 12\nrows = 2", "output[0].columns"),
    ("pins = {rs = 0, rw = 1, e = 2, backlight = 3, d4 = 4, d5 = 5, d6 = 6, d7 = 6}",
     "output[0].pins"),
    ("pins = {rs = 0, rw = 1, e = 2, backlight = 3, d4 = 4, d5 = 5, d6 = 8, d7 = 7}",
     "output[0].pins.d6"),
    ('bus = "gpio"', "output[0].lines"),
    ('bus = "gpio"\nlines = {rs = 5, e = 6, d4 = 13, d5 = 19, d6 = 26}', "output[0].lines.d7"),
    ('bus = "gpio"\nlines = {rs = 5, e = 6, d4 = 13, d5 = 19, d6 = 26, d7 = 5}',
     "output[0].lines"),
    ('bus = "gpio"\naddress = 0x3f\nlines = {rs = 5, e = 6, d4 = 13, d5 = 19, d6 = 26, d7 = 21}',
     "output[0].address"),
    ('bus = "gpio"\nbacklight = "session"\n'
     "lines = {rs = 5, e = 6, d4 = 13, d5 = 19, d6 = 26, d7 = 21}", "output[0].backlight"),
    ("lines = {rs = 5, e = 6, d4 = 13, d5 = 19, d6 = 26, d7 = 21}", "output[0].lines"),
    ('bus = "spi"', "output[0].bus"),
    ('template = "{totl}"', "output[0].template"),
    ("refresh_s = -1", "output[0].refresh_s"),
]


@pytest.mark.parametrize(("keys", "key"), BAD)
def test_bad_config_names_the_key(keys: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(f'[[output]]\ntype = "hd44780"\n{keys}\n')
    assert f"config key {key}:" in str(info.value)
    assert "\n" not in str(info.value)


def test_good_configs_parse() -> None:
    i2c = parse('[[output]]\ntype = "hd44780"\naddress = 0x3f\ncolumns = 16\nrows = 2\n'
                'rom = "A02"\nbacklight = "session"\nrefresh_s = 0\n').output[0]
    assert isinstance(i2c, Hd44780Config)
    assert (i2c.address, i2c.pins, i2c.refresh_s) == (0x3F, DEFAULT_PINS, 0)
    gpio = parse('[[output]]\ntype = "hd44780"\nbus = "gpio"\nchip = "gpiochip0"\n'
                 "lines = {rs = 5, e = 6, d4 = 13, d5 = 19, d6 = 26, d7 = 21}\n").output[0]
    assert isinstance(gpio, Hd44780Config)
    assert gpio.chip_path == "/dev/gpiochip0"
    assert PinMap(**MJKDZ).e == 4


def test_gpiod_is_imported_only_for_a_gpio_display() -> None:
    code = ("import sys, asyncio\n"
            "from agent.settings.config import parse\n"
            "from agent.outputs.registry import load_kind\n"
            "cfg = parse('[[output]]\\ntype = \"hd44780\"\\n').output[0]\n"
            "load_kind('hd44780').create(cfg)\n"
            "print('gpiod' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO, check=True)
    assert result.stdout.strip() == "False"
