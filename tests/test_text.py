"""Language choice, HTML reduction and QR code links."""

from __future__ import annotations

import pytest

from agent.everest.session_cost import MessageContent
from agent.model.text import choose, html_to_text, preferences


def _m(content: str, language: str | None = None, fmt: str | None = None) -> MessageContent:
    kwargs: dict[str, str] = {}
    if language is not None:
        kwargs["language"] = language
    if fmt is not None:
        kwargs["format"] = fmt
    return MessageContent(content=content, **kwargs)  # type: ignore[arg-type]


MESSAGES = [_m("Price 0.39/kWh", "EN"), _m("Preis 0,39/kWh", "de-DE"), _m("Prix", "fr")]


@pytest.mark.parametrize(("prefs", "expected"), [
    (["de"], "Preis 0,39/kWh"),
    (["DE-AT"], "Preis 0,39/kWh"),
    (["nl", "fr"], "Prix"),
    (["en"], "Price 0.39/kWh"),
    (["it"], "Price 0.39/kWh"),   # no match: the first message (station default language)
    ([], "Price 0.39/kWh"),
])
def test_language_preference(prefs: list[str], expected: str) -> None:
    assert choose(MESSAGES, preferences(prefs)).text == expected


def test_html_is_reduced_to_plain_text() -> None:
    html = "<p>Price:&nbsp;<b>0.39&euro;</b>/kWh</p>\n<br/>Idle&amp;parking<script>x()</script>"
    assert html_to_text(html) == "Price: 0.39€/kWh Idle&parking"


def test_html_message_chosen_as_text() -> None:
    chosen = choose([_m("<i>Thanks</i>   for\ncharging", "en", "HTML")], ("en",))
    assert chosen.text == "Thanks for charging"
    assert chosen.language == "en"


def test_uri_and_qrcode_go_to_qr_field() -> None:
    chosen = choose([_m("Total 4.56 EUR", "en"), _m("https://r.example/de", "de", "QRCODE"),
                     _m("https://r.example/en", "en", "URI")], ("en",))
    assert chosen.text == "Total 4.56 EUR"
    assert chosen.qr_code == "https://r.example/en"


def test_no_messages() -> None:
    assert choose([], ("en",)).text is None
    assert choose(None, ("en",)).qr_code is None
