"""Nextion encoder: instructions byte for byte, escaping, diffing, pages, re-sync."""

from __future__ import annotations

import pytest

from agent.model.view import Total, View
from agent.outputs.nextion import NextionEncoder, check_fields, check_pages, escape

FF = b"\xff\xff\xff"


def charging(total: str, message: str | None = None) -> View:
    return View(screen="charging", link="up", session_id="s", status="Running",
                total=Total(1, 2, "EUR", total), message=message,
                qr_code="https://q.example/s")


def encoder(**kw: object) -> NextionEncoder:
    fields = {"total": "t0", "message": "t1", "qr_code": "qr0"}
    return NextionEncoder(fields, **kw)  # type: ignore[arg-type]


def test_first_view_sends_every_mapped_field() -> None:
    assert encoder().encode(charging("1,23 EUR", "Hi")) == (
        b't0.txt="1,23 EUR"' + FF + b't1.txt="Hi"' + FF + b'qr0.txt="https://q.example/s"' + FF)


def test_only_changed_fields_are_sent() -> None:
    enc = encoder()
    enc.encode(charging("1,23 EUR", "Hi"))
    assert enc.encode(charging("1,23 EUR", "Hi")) == b""
    assert enc.encode(charging("1,50 EUR", "Hi")) == b't0.txt="1,50 EUR"' + FF
    # An absent value clears the component.
    assert enc.encode(charging("1,50 EUR")) == b't1.txt=""' + FF


def test_reset_resends_everything() -> None:
    enc = encoder()
    first = enc.encode(charging("1,23 EUR", "Hi"))
    enc.reset()
    assert enc.encode(charging("1,23 EUR", "Hi")) == first


def test_quotes_and_backslashes_are_escaped() -> None:
    assert escape('say "hi" \\o/') == 'say \\"hi\\" \\\\o/'
    enc = NextionEncoder({"message": "page1.t1"})
    view = View(screen="idle", link="up", message='a "b" \\c')
    assert enc.encode(view) == b'page1.t1.txt="a \\"b\\" \\\\c"' + FF


def test_list_lines_become_nextion_line_breaks() -> None:
    enc = NextionEncoder({"prices": "t2"})
    view = View(screen="price", link="up", prices=["0,35 €/kWh", "0,10 €/min"])
    assert enc.encode(view) == b't2.txt="0,35 EUR/kWh\\r0,10 EUR/min"' + FF


def test_encoding_and_no_stray_terminator_bytes() -> None:
    view = View(screen="idle", link="up", message="€ café ÿ\u00a0x")
    latin = NextionEncoder({"message": "t1"}, encoding="latin-1").encode(view)
    assert latin == 't1.txt="EUR café y\u00a0x"'.encode("latin-1") + FF
    cp437 = NextionEncoder({"message": "t1"}, encoding="cp437").encode(view)
    assert cp437 == 't1.txt="EUR café ÿ x"'.encode("cp437") + FF
    assert cp437.count(b"\xff") == 3
    utf8 = NextionEncoder({"message": "t1"}, encoding="utf-8").encode(view)
    assert utf8 == 't1.txt="€ café ÿ\u00a0x"'.encode() + FF


def test_pages_per_screen_resend_fields_after_page_change() -> None:
    enc = encoder(pages={"charging": "charge", "idle": "2"})
    view = charging("1 EUR", "Hi")
    assert enc.encode(view).startswith(b"page charge" + FF + b't0.txt="1 EUR"' + FF)
    assert enc.encode(view) == b""
    idle = View(screen="idle", link="up", total=Total(1, 2, "EUR", "1 EUR"), message="Hi",
                qr_code="https://q.example/s")
    # Same texts, but the new page re-initialised its components: all fields again.
    assert enc.encode(idle) == (b"page 2" + FF + b't0.txt="1 EUR"' + FF + b't1.txt="Hi"' + FF
                                + b'qr0.txt="https://q.example/s"' + FF)
    # A screen without a page keeps the current page.
    price = View(screen="price", link="up", message="Hi", qr_code="https://q.example/s")
    assert enc.encode(price) == b't0.txt=""' + FF


@pytest.mark.parametrize(("fields", "needle"), [
    ({}, "fields: map at least one"),
    ({"totl": "t0"}, "unknown view field 'totl'"),
    ({"total": "t0.txt=1"}, "fields.total"),
    ({"total": '"t0'}, "fields.total"),
])
def test_bad_fields(fields: dict[str, str], needle: str) -> None:
    with pytest.raises(ValueError) as err:
        check_fields(fields)
    assert needle in str(err.value)


def test_bad_page_name() -> None:
    with pytest.raises(ValueError, match=r"pages\.idle"):
        check_pages({"idle": "main page"})
