"""The web output's configuration: every bad key or file it names fails at start and in
`check-config` with exit 2 and one line naming the key; the page's labels per language."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.outputs.web.labels import BUILTIN, KEYS, load_labels
from tests.test_preflight import assert_config_error, cost_agent, write_config

EVSES = '[[evse]]\nid = 1\nmodule_id = "a"\n[[evse]]\nid = 2\nmodule_id = "b"\n'


@pytest.mark.parametrize(("keys", "key"), [
    ('listen = "8080"', "output[0].listen"),
    ('listen = "127.0.0.1:99999"', "output[0].listen"),
    ('listen = "unix:relative.sock"', "output[0].listen"),
    ("max_clients = 0", "output[0].max_clients"),
    ('languages = ["english"]', "output[0].languages"),
    ("languages = []", "output[0].languages"),
    ('languages = ["pl"]', "output[0].languages"),  # not built in, no labels file
    ('css = "{tmp}/missing.css"', "output[0].css"),
    ('logo = "{tmp}/logo.bmp"', "output[0].logo"),
    ('labels = "{tmp}/labels.json"', "output[0].labels"),
    ("keepalive_s = 0.1", "output[0].keepalive_s"),
    ("colour = 1", "output[0].colour"),
])
def test_a_bad_web_key_is_a_config_error(tmp_path: Path, keys: str, key: str) -> None:
    (tmp_path / "logo.bmp").write_bytes(b"BM")
    (tmp_path / "labels.json").write_text(json.dumps({"pl": {"pricee": "Cena"}}))
    body = f'[[output]]\ntype = "web"\n{keys.format(tmp=tmp_path)}\n'
    assert_config_error(write_config(tmp_path, body), key)


def test_one_web_output_serves_every_evse_so_it_takes_no_evse(tmp_path: Path) -> None:
    body = EVSES + '[[output]]\ntype = "web"\nevse = 1\n'
    assert_config_error(write_config(tmp_path, body), "output[0].evse")
    ok = write_config(tmp_path, EVSES + '[[output]]\ntype = "web"\n')
    assert cost_agent("check-config", str(ok)).returncode == 0


def test_web_without_h11_says_what_to_install(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "h11.py").write_text("raise ImportError('no h11', name='h11')\n")
    config = write_config(tmp_path, '[[output]]\ntype = "web"\n')
    assert_config_error(config, "output[0].type", env={"PYTHONPATH": str(shadow)})
    result = cost_agent("check-config", str(config), env={"PYTHONPATH": str(shadow)})
    assert "cost-agent[web]" in result.stderr


def test_a_labels_file_adds_a_language_and_overrides_single_labels(tmp_path: Path) -> None:
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"pl": {"price": "Cena", "charging": "Ładowanie"},
                                "de": {"finished": "Vielen Dank"}}), encoding="utf-8")
    labels = load_labels(["pl", "de", "en"], str(path))
    assert list(labels) == ["pl", "de", "en"]
    assert labels["pl"]["price"] == "Cena" and labels["pl"]["charging"] == "Ładowanie"
    assert labels["pl"]["total"] == "Total"  # not given: English
    assert labels["de"]["finished"] == "Vielen Dank" and labels["de"]["price"] == "Preis"
    config = write_config(tmp_path, f'[[output]]\ntype = "web"\nlanguages = ["pl", "de"]\n'
                                    f'labels = "{path}"\n')
    assert cost_agent("check-config", str(config)).returncode == 0


def test_every_built_in_language_has_every_label() -> None:
    for code, words in BUILTIN.items():
        assert len(words) == len(KEYS), code
        assert all(w.strip() for w in words), code
    # A translation that is the English word by mistake shows up as a copy of the English row.
    for code in BUILTIN:
        if code != "en":
            same = [k for k, a, b in zip(KEYS, BUILTIN["en"], BUILTIN[code], strict=True)
                    if a == b and k not in ("total", "energy", "prices")]
            assert not same, (code, same)
