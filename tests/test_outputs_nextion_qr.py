"""Nextion receipt page: `qr_code` -> a QR component's txt, and `pages` switching on finished."""

from __future__ import annotations

from agent.model.view import Total, View
from agent.outputs.nextion import NextionEncoder
from agent.outputs.serial import SerialConfig
from agent.settings.config import parse

FF = b"\xff\xff\xff"
URL = "https://receipts.example.com/r/8F3A2C?lang=de&sig=" + "a1" * 75  # 200 characters
RECEIPT_CONFIG = """
[[output]]
type = "serial"
device = "/dev/ttyAMA0"
baudrate = 115200
protocol = "nextion"
encoding = "latin-1"
[output.fields]
total = "t0"
qr_code = "receipt.qr0"
[output.pages]
charging = "charge"
finished = "receipt"
"""


def instructions(data: bytes) -> list[str]:
    assert data == b"" or data.endswith(FF)
    return [part.decode("latin-1") for part in data.split(FF)[:-1]]


def view(screen: str, total: str, qr_code: str | None = None) -> View:
    status = {"charging": "Running", "finished": "Finished"}[screen]
    return View(screen=screen, link="up", session_id="s", status=status,  # type: ignore[arg-type]
                total=Total(1234, 2, "EUR", total), qr_code=qr_code)


def receipt_encoder() -> NextionEncoder:
    config = parse(RECEIPT_CONFIG).output[0]
    assert isinstance(config, SerialConfig)
    return NextionEncoder(config.fields, pages=config.pages, encoding=config.encoding)


def test_url_is_200_characters() -> None:
    assert len(URL) == 200


def test_finished_switches_to_the_receipt_page_and_sets_the_qr_code() -> None:
    enc = receipt_encoder()
    assert instructions(enc.encode(view("charging", "3.10 EUR"))) == [
        "page charge", 't0.txt="3.10 EUR"', 'receipt.qr0.txt=""']
    assert instructions(enc.encode(view("finished", "12.34 EUR", URL))) == [
        "page receipt", 't0.txt="12.34 EUR"', f'receipt.qr0.txt="{URL}"']
    assert enc.encode(view("finished", "12.34 EUR", URL)) == b""


def test_a_new_receipt_url_on_the_receipt_page_sends_only_the_code() -> None:
    enc = receipt_encoder()
    enc.encode(view("finished", "12.34 EUR", URL))
    assert instructions(enc.encode(view("finished", "12.34 EUR", URL + "x"))) == [
        f'receipt.qr0.txt="{URL}x"']


def test_after_a_reset_the_receipt_page_and_code_are_sent_again() -> None:
    enc = receipt_encoder()
    enc.encode(view("finished", "12.34 EUR", URL))
    enc.reset()
    assert instructions(enc.encode(view("finished", "12.34 EUR", URL)))[0] == "page receipt"
