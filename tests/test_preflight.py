"""Start-up failures are configuration errors: `check-config` and `run` both exit 2 with one line
naming the key, never a traceback, never a secret (the real `cost-agent` process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TLS = REPO / "tests" / "fixtures" / "tls"
SECRET = "hunter2-DO-NOT-LOG"


def cost_agent(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real command line, as systemd runs it."""
    return subprocess.run([sys.executable, "-m", "agent", *argv], capture_output=True,
                          text=True, cwd=REPO, check=False, timeout=60,
                          env={**os.environ, **(env or {})})


def write_config(tmp: Path, body: str) -> Path:
    """A config whose directories are fine, plus `body` (the broker is never reached)."""
    path = tmp / "agent.toml"
    path.write_text(f'[mqtt]\nport = 9\n[status]\npath = "{tmp}/run/status.json"\n'
                    f'[state]\ndir = "{tmp}/state"\n{body}')
    return path


def secret_file(tmp: Path, content: str) -> Path:
    """A secret file holding `content` (which includes SECRET)."""
    path = tmp / "secret"
    path.write_text(content)
    return path


def assert_config_error(config: Path, key: str, env: dict[str, str] | None = None) -> None:
    """Both subcommands: exit 2, one stderr line naming the key, no traceback, no secret."""
    for argv in (["check-config", str(config)], ["run", "--config", str(config)]):
        result = cost_agent(*argv, env=env)
        assert result.returncode == 2, (argv, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"cost-agent: config key {key}: "), lines[0]
        assert "Traceback" not in result.stderr
        assert SECRET not in result.stderr + result.stdout


def tls(body: str) -> str:
    return "[mqtt.tls]\n" + body.format(tls=TLS) + "\n"


PRICING = ('[pricing]\napi_url = "http://127.0.0.1:9/rates"\nevse_id = "DE*ABC*E1"\n'
           'token_file = "{secret}"\n')

CASES: list[tuple[str, str, str | None, str]] = [
    # (id, config body, secret file content or None, key)
    ("tls-ca-missing", tls('ca_file = "{tls}/nope.crt"'), None, "mqtt.tls.ca_file"),
    ("tls-ca-not-pem", tls('ca_file = "{tls}/README"'), None, "mqtt.tls.ca_file"),
    ("tls-cert-not-pem", tls('cert_file = "{tls}/client.key"'), None, "mqtt.tls.cert_file"),
    ("tls-key-mismatch", tls('cert_file = "{tls}/client.crt"\nkey_file = "{tls}/other.key"'),
     None, "mqtt.tls.key_file"),
    ("tls-key-encrypted",
     tls('cert_file = "{tls}/client.crt"\nkey_file = "{tls}/encrypted.key"'), None,
     "mqtt.tls.key_file"),
    ("tls-key-without-cert", tls('key_file = "{tls}/client.key"'), None, "mqtt.tls.key_file"),
    ("password-missing", '[mqtt]\npassword_file = "/nonexistent/pw"\n', None,
     "mqtt.password_file"),
    ("password-two-lines", '[mqtt]\npassword_file = "{secret}"\n', f"{SECRET}\nsecond\n",
     "mqtt.password_file"),
    ("password-control-char", '[mqtt]\npassword_file = "{secret}"\n', f"{SECRET}\x1b\n",
     "mqtt.password_file"),
    ("password-empty", '[mqtt]\npassword_file = "{secret}"\n', "\n", "mqtt.password_file"),
    ("token-missing", PRICING.replace("{secret}", "/nonexistent/token"), None,
     "pricing.token_file"),
    ("token-two-lines", PRICING, f"{SECRET}\nX-Injected: 1\n", "pricing.token_file"),
    ("token-not-ascii", PRICING, f"{SECRET}\u20ac\n", "pricing.token_file"),
    ("money-template", '[display.money]\ntemplate = "{{amount.real}}"\n', None,
     "display.money.template"),
    ("serial-template",
     '[[output]]\ntype = "serial"\ndevice = "/dev/null"\ntemplate = "{{total.real}}"\n', None,
     "output[0].template"),
]


@pytest.mark.parametrize(("body", "content", "key"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_start_up_error_is_a_config_error(tmp_path: Path, body: str, content: str | None,
                                          key: str) -> None:
    secret = secret_file(tmp_path, content) if content is not None else tmp_path / "none"
    # The [mqtt] table of a case replaces the base one (TOML forbids defining it twice).
    config = write_config(tmp_path, "")
    text = config.read_text()
    if body.startswith("[mqtt]\n"):
        text = text.replace("[mqtt]\nport = 9\n", "")
        body = body.replace("[mqtt]\n", "[mqtt]\nport = 9\n", 1)
    config.write_text(text + body.replace("{secret}", str(secret)).replace("{{", "{")
                      .replace("}}", "}"))
    assert_config_error(config, key)


@pytest.mark.parametrize(("table", "key"), [("state", "state.dir"), ("status", "status.path")])
def test_directory_that_cannot_exist(tmp_path: Path, table: str, key: str) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    state = f"{blocker}/state" if table == "state" else f"{tmp_path}/state"
    status = f"{blocker}/status.json" if table == "status" else f"{tmp_path}/status.json"
    config = tmp_path / "agent.toml"
    config.write_text(f'[status]\npath = "{status}"\n[state]\ndir = "{state}"\n')
    assert_config_error(config, key)


@pytest.mark.parametrize("output", [
    '[[output]]\ntype = "gpio"\n[output.lines]\ncharging = 1\n',
    '[[output]]\ntype = "hd44780"\nbus = "gpio"\n'
    "lines = {rs = 5, e = 6, d4 = 13, d5 = 19, d6 = 26, d7 = 21}\n",
])
def test_missing_gpio_bindings(tmp_path: Path, output: str) -> None:
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "gpiod.py").write_text("raise ImportError('libgpiod is not installed')\n")
    config = write_config(tmp_path, output)
    assert_config_error(config, "output[0].type", env={"PYTHONPATH": str(shadow)})


def test_valid_tls_and_secrets_pass(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("abc-123\n")
    password = tmp_path / "pw"
    password.write_text("pässword with spaces\r\n")
    config = write_config(tmp_path, tls(
        'ca_file = "{tls}/client.crt"\ncert_file = "{tls}/client.crt"\n'
        'key_file = "{tls}/client.key"')
        + PRICING.replace("{secret}", str(token)))
    config.write_text(config.read_text().replace(
        "[mqtt]\nport = 9\n", f'[mqtt]\nport = 9\npassword_file = "{password}"\n'))
    result = cost_agent("check-config", str(config))
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "state").exists()  # checking creates nothing
