"""Config: valid files load into typed structs; bad ones fail with one line naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent.outputs.file import FileConfig
from agent.settings.config import ConfigError, load, parse

REPO = Path(__file__).resolve().parent.parent


def test_example_config_is_valid() -> None:
    config = load(REPO / "etc" / "cost-agent.toml")
    assert config.everest.base() == "everest_api/1/session_cost_consumer/session_cost_consumer/"
    assert config.watchdog.communication_check_interval_s < 5.0
    assert any(isinstance(o, FileConfig) for o in config.output)


def test_defaults_and_prefix() -> None:
    config = parse('[everest]\nmodule_id = "cost_1"\ntopic_prefix = "site/a/"\n')
    assert config.everest.base() == "site/a/everest_api/1/session_cost_consumer/cost_1/"
    assert config.mqtt.port == 1883
    assert config.display.tariff_hold_s == 60
    assert config.output == []


BAD = [
    ('[everest]\nmodule_id = "a/b"\n', "everest.module_id"),
    ('[everest]\nmodule_id = ""\n', "everest.module_id"),
    ('[everest]\nmodule_id = "cost#1"\n', "everest.module_id"),
    ("[mqtt]\nport = 70000\n", "mqtt.port"),
    ('[mqtt]\nport = "1883"\n', "mqtt.port"),
    ("[mqtt]\nhots = 1\n", "mqtt.hots"),
    ("[watchdog]\ncommunication_check_interval_s = 0\n", "watchdog.communication_check_interval_s"),
    ("[watchdog]\nheartbeat_timeout_s = -1\n", "watchdog.heartbeat_timeout_s"),
    ('[display]\ncurrency = "euro"\n', "display.currency"),
    ('[display.money]\ntemplate = "{price}"\n', "display.money"),
    ("[[output]]\npath = \"/tmp/x\"\n", "output[0].type"),
    ('[[output]]\ntype = "hologram"\n', "output[0].type"),
    ('[[output]]\ntype = "file"\npath = "/tmp/x"\ncolour = 1\n', "output[0].colour"),
    ('[[output]]\ntype = "console"\n[[output]]\ntype = "console"\nwidth = 2\n', "output[1].width"),
    ("[status\n", "config syntax"),
    # issue 9: the check interval must stay below EVerest's check timeout
    ("[watchdog]\ncommunication_check_interval_s = 5\n", "watchdog.communication_check_interval_s"),
    ("[watchdog]\neverest_check_timeout_s = 1\n", "watchdog.communication_check_interval_s"),
    ("[display]\nsession_timeout_s = -1\n", "display.session_timeout_s"),
    # issue 11: [[evse]] tables and the outputs that show them
    ('[[evse]]\nmodule_id = "m1"\n', "evse[0].id"),
    ('[[evse]]\nid = 0\nmodule_id = "m1"\n', "evse[0].id"),
    ('[[evse]]\nid = 1\nmodule_id = "a/b"\n', "evse[0].module_id"),
    ('[[evse]]\nid = 1\nmodule_id = "m1"\n[[evse]]\nid = 1\nmodule_id = "m2"\n', "evse[1].id"),
    ('[[evse]]\nid = 1\nmodule_id = "m1"\n[[evse]]\nid = 2\nmodule_id = "m1"\n',
     "evse[1].module_id"),
    ('[[evse]]\nid = 1\nmodule_id = "m1"\n[[evse]]\nid = 2\nmodule_id = "m2"\n'
     '[[output]]\ntype = "console"\n', "output[0].evse"),
    ('[[evse]]\nid = 1\nmodule_id = "m1"\n[[output]]\ntype = "console"\nevse = 2\n',
     "output[0].evse"),
    ('[[output]]\ntype = "console"\nevse = 1\n', "output[0].evse"),
    ('[pricing]\napi_url = "https://x/api"\ntoken_file = "t"\n', "pricing.evse_id"),
]


def test_evse_tables_and_outputs() -> None:
    config = parse('[everest]\ntopic_prefix = "p/"\n'
                   '[[evse]]\nid = 1\nmodule_id = "evse_manager_consumer_1"\n'
                   '[[evse]]\nid = 2\nmodule_id = "evse_manager_consumer_2"\n'
                   '[[output]]\ntype = "console"\nevse = 2\n')
    assert [e.id for e in config.evse] == [1, 2]
    assert config.evse[0].base("p/") == (
        "p/everest_api/1/evse_manager_consumer/evse_manager_consumer_1/")
    assert config.output[0].evse == 2
    one = parse('[[evse]]\nid = 7\nmodule_id = "m"\n[[output]]\ntype = "console"\n')
    assert one.output[0].evse is None  # with one EVSE, an output without `evse` shows it


@pytest.mark.parametrize(("text", "key"), BAD)
def test_bad_config_names_the_key(text: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(text)
    message = str(info.value)
    assert key in message
    assert "\n" not in message


def test_check_config_cli_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[[output]]\ntype = "file"\npath = "/tmp/view.json"\n')
    ok = subprocess.run([sys.executable, "-m", "agent", "check-config", str(good)],
                        capture_output=True, text=True, cwd=REPO, check=False)
    assert ok.returncode == 0, ok.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[mqtt]\nport = 0\n")
    for argv in (["check-config", str(bad)], ["run", "--config", str(bad)]):
        result = subprocess.run([sys.executable, "-m", "agent", *argv], capture_output=True,
                                text=True, cwd=REPO, check=False)
        assert result.returncode == 2
        assert result.stderr.strip().count("\n") == 0
        assert "mqtt.port" in result.stderr


def test_unreadable_password_file_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[mqtt]\nusername = "u"\npassword_file = "{tmp_path}/missing"\n'
                      f'[status]\npath = ""\n[state]\ndir = ""\n')
    result = subprocess.run([sys.executable, "-m", "agent", "run", "--config", str(config)],
                            capture_output=True, text=True, cwd=REPO, check=False, timeout=30)
    assert result.returncode == 2
    assert "mqtt.password_file" in result.stderr
