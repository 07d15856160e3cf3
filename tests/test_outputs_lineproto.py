"""Line protocol rendering: placeholders, wrapping, transliteration, framing (byte for byte)."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.model.view import Estimate, Live, LiveTotal, NextPeriod, ShownMessage, Total, View
from agent.outputs.lineproto import (
    FIELDS,
    LineRenderer,
    check_template,
    field_values,
    layout,
    transliterate,
)

FULL = View(
    screen="charging", link="up", session_id="s-1", status="Running",
    total=Total(value=1234, decimals=2, currency="EUR", text="12,34 €"), stale=True,
    energy_wh=12345, prices=["0,35 €/kWh", "0,10 €/min"], idle_price="0,05 €/min",
    next_period=NextPeriod(from_="18:00", prices=["0,40 €/kWh"]), message="Bonne journée",
    language="fr", qr_code="https://pay.example/s-1", updated_at="2024-05-01T12:00:00Z",
    preview=["ab 0,30 €"], estimate=Estimate(value="12.30", currency="EUR", text="~12,30 €"),
    evse=2, evse_id="DE*PNX*E12345*2", meter_public_key="3059301306072A8648CE3D0201",
    live=Live(energy_wh=12345, power_w=7449, duration_s=3909, state="Charging"),
    live_total=LiveTotal(value=1302, decimals=2, currency="EUR", text="≈ 13,02 €"))
BARE = View(screen="idle", link="down")


def test_every_field_has_a_placeholder() -> None:
    values = field_values(FULL, separator=" | ")
    assert set(values) == set(FIELDS)
    assert values == {
        "screen": "charging", "link": "up", "session_id": "s-1", "status": "Running",
        "total": "12,34 €", "total_value": "12.34", "currency": "EUR", "stale": "stale",
        "energy_wh": "12345", "energy_kwh": "12.345 kWh",
        "prices": "0,35 €/kWh | 0,10 €/min", "idle_price": "0,05 €/min",
        "next_from": "18:00", "next_prices": "0,40 €/kWh", "message": "Bonne journée",
        "language": "fr", "qr_code": "https://pay.example/s-1",
        "updated_at": "2024-05-01T12:00:00Z", "preview": "ab 0,30 €", "estimate": "~12,30 €",
        "final": "", "live_total": "≈ 13,02 €", "power_kw": "7.4 kW", "duration": "1:05:09",
        "evse": "2", "evse_id": "DE*PNX*E12345*2", "payment_url": "",  # price screen only
        "meter_key": "3059301306072A8648CE3D0201", "display_message": "",
    }


def test_the_message_line_shows_the_backends_display_message_while_it_is_on_screen() -> None:
    shown = msgspec.structs.replace(FULL, display_message=ShownMessage(
        id=7, text="Station closes at 22:00", qr_code=None, priority="InFront"))
    values = field_values(shown)
    assert values["message"] == values["display_message"] == "Station closes at 22:00"
    assert field_values(FULL)["message"] == "Bonne journée"  # the agent's own, otherwise


@pytest.mark.parametrize(("watts", "seconds", "power", "duration"), [
    (7449, 3909, "7.4 kW", "1:05:09"), (7450, 59, "7.5 kW", "0:00:59"),
    (11000, 36000, "11.0 kW", "10:00:00"), (0, 0, "0.0 kW", "0:00:00"),
    (-3250, 61, "-3.3 kW", "0:01:01"), (-40, 3600, "0.0 kW", "1:00:00"),
])
def test_power_and_duration(watts: int, seconds: int, power: str, duration: str) -> None:
    live = Live(energy_wh=0, power_w=watts, duration_s=seconds, state="Charging")
    values = field_values(View(screen="charging", link="up", live=live))
    assert (values["power_kw"], values["duration"]) == (power, duration)
    bare = field_values(BARE)
    assert (bare["power_kw"], bare["duration"], bare["live_total"], bare["evse"]) == (
        "", "", "", "")


@pytest.mark.parametrize(("final", "text"), [(None, ""), (True, "final"), (False, "not final")])
def test_final_placeholder(final: bool | None, text: str) -> None:
    assert field_values(View(screen="finished", link="up", final=final))["final"] == text


def test_absent_values_render_empty() -> None:
    values = field_values(BARE)
    assert values["screen"] == "idle" and values["link"] == "down"
    assert {k for k, v in values.items() if v} == {"screen", "link"}


def test_total_value_decimals() -> None:
    def value(v: int, d: int) -> str:
        view = View(screen="charging", link="up", total=Total(v, d, None, ""))
        return field_values(view)["total_value"]
    assert [value(5, 2), value(-1234, 2), value(7, 0), value(120, 3)] == \
        ["0.05", "-12.34", "7", "0.120"]


def test_default_template_frame() -> None:
    assert LineRenderer().frame(FULL) == b"charging 12,34 EUR\r\nBonne journee\r\n"
    # Trailing empty lines and trailing spaces are dropped; one line always remains.
    assert LineRenderer().frame(BARE) == b"idle\r\n"


def test_all_placeholders_in_a_template() -> None:
    tpl = "{screen}|{status}|{total}|{energy_kwh}|{qr_code}\n{prices}\n{message}"
    frame = LineRenderer(tpl, encoding="utf-8", eol=b"\n").frame(FULL)
    assert frame == ("charging|Running|12,34 €|12.345 kWh|https://pay.example/s-1\n"
                     "0,35 €/kWh\n0,10 €/min\nBonne journée\n").encode()


def test_lcd_20x4_wraps_truncates_and_pads() -> None:
    view = View(screen="price", link="up", message="Welcome! Plug in your vehicle to start "
                "charging now please", prices=["0.35 EUR/kWh"])
    tpl = "{prices}\n{message}"
    r = LineRenderer(tpl, width=20, lines=4, eol=b"\n")
    assert r.frame(view) == (b"0.35 EUR/kWh\nWelcome! Plug in\nyour vehicle to\n"
                             b"start charging now\n")
    padded = LineRenderer("{screen}", width=8, lines=3, pad=True, eol=b"|").frame(view)
    assert padded == b"price   |        |        |"


def test_long_word_is_broken_at_width() -> None:
    assert layout("https://pay.example/abcdef", 10, None) == ["https://pa", "y.example/",
                                                               "abcdef"]


def test_clear_prefix_and_eol() -> None:
    r = LineRenderer("{screen}", clear=b"\x1b[2J\x0c", eol=b"\r")
    assert r.frame(BARE) == b"\x1b[2J\x0cidle\r"


@pytest.mark.parametrize(("encoding", "expected"), [
    ("ascii", b"EUR 12,34 e a u ss ae ? 'x' - ..."),
    ("latin-1", "EUR 12,34 é à ü ß æ ? 'x' - ...".encode("latin-1")),
    ("cp437", "EUR 12,34 é à ü ß æ ? 'x' - ...".encode("cp437")),
    ("utf-8", "€ 12,34 é à ü ß æ 漢 ‘x’ – …".encode()),
])
def test_transliteration(encoding: str, expected: bytes) -> None:
    view = View(screen="idle", link="up", message="€ 12,34 é à ü ß æ 漢 ‘x’ – …")
    frame = LineRenderer("{message}", encoding=encoding, eol=b"").frame(view)  # type: ignore[arg-type]
    assert frame == expected


def test_transliterate_accents_and_symbols() -> None:
    assert transliterate("Zürich Łódź Øre 5 °C", "ascii") == "Zurich Lodz Ore 5 degC"
    assert transliterate("naïve café", "latin-1") == "naïve café"


def test_control_characters_in_values_become_spaces() -> None:
    view = View(screen="idle", link="up", message="a\nb\r\x1b[2Jc\td")
    assert LineRenderer("{message}", eol=b"\n").frame(view) == b"a b  [2Jc d\n"


@pytest.mark.parametrize(("template", "needle"), [
    ("{bogus}", "unknown placeholder {bogus}"),
    ("{screen.__class__}", "unknown placeholder"),
    ("{}", "unknown placeholder {}"),
    ("{screen", "literal braces"),
    ("{total:d}", "template:"),
])
def test_bad_templates(template: str, needle: str) -> None:
    with pytest.raises(ValueError, match="template") as err:
        check_template(template)
    assert needle in str(err.value)


def test_literal_braces_and_format_spec() -> None:
    r = LineRenderer("{{{screen:>6}}}", eol=b"")
    assert r.frame(BARE) == b"{  idle}"


@given(st.text(max_size=200), st.integers(1, 40), st.integers(1, 6))
def test_layout_bounds(text: str, width: int, lines: int) -> None:
    view = View(screen="price", link="up", message=text, prices=[text[:30]])
    r = LineRenderer("{message}\n{prices}", width=width, lines=lines, encoding="cp437",
                     eol=b"\r\n")
    frame = r.frame(view)
    frame.decode("cp437")
    out = frame.split(b"\r\n")
    assert out[-1] == b""
    assert 1 <= len(out) - 1 <= lines
    assert all(len(line) <= width for line in out[:-1])
