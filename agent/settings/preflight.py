"""Start-up checks of what a configuration points at, so `check-config` finds what `run` would.

`check()` runs from `agent.settings.config.load()`: TLS files (the SSLContext is built), secret
files, templates (rendered once against a sample view), the state and status directories, and the
optional dependencies of configured outputs. Each failure is one ConfigError line naming the
key; no message ever contains a secret.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from agent.model.view import Estimate, Live, LiveTotal, NextPeriod, Total, View
from agent.settings import secretfile
from agent.settings.config import ConfigError

if TYPE_CHECKING:
    import ssl

    from agent.outputs.base import OutputConfig
    from agent.settings.config import Config, MqttConfig, TlsConfig

# Every field set, so a template that can fail on some value fails here.
SAMPLE_VIEW = View(
    screen="charging", link="up", session_id="S1", status="Running",
    total=Total(1234567, 3, "EUR", "1234.57 EUR"), stale=True, energy_wh=10800,
    prices=["0.39 EUR/kWh", "0.50 EUR"], idle_price="6.00 EUR/h after 30 min",
    next_period=NextPeriod(from_="2026-11-21T12:00:00Z", prices=["0.29 EUR/kWh"]),
    message="Thank you\nfor charging", language="en", qr_code="https://example.com/r/1",
    updated_at="2026-11-21T10:00:00.000Z", preview=["20 kWh: 7.80 EUR"],
    estimate=Estimate(value="1234.5", currency="EUR", text="1234.50 EUR"), final=False,
    evse=1, evse_id="DE*PNX*E12345*1",
    live=Live(energy_wh=10950, power_w=7400, duration_s=3909, state="Charging"),
    live_total=LiveTotal(value=1235000, decimals=3, currency="EUR", text="≈ 1235.00 EUR"))


def check(config: Config) -> None:
    """Raise ConfigError (one line naming the key) for anything `run` would fail on."""
    mqtt = config.mqtt
    if mqtt.tls is not None:
        ssl_context(mqtt.tls)
    if mqtt.password_file:
        read_password(mqtt)
    pricing = config.pricing
    if pricing is not None and pricing.api_url:
        read_token(pricing.token_file)
    _money(config)
    if config.state.dir:
        writable_dir(config.state.dir, "state.dir")
    if config.status.path:
        writable_dir(str(Path(config.status.path).parent), "status.path")
    for index, output in enumerate(config.output):
        _output(f"output[{index}]", output)


def read_password(mqtt: MqttConfig) -> str | None:
    """The MQTT password from `password_file` (None when unset); raises ConfigError."""
    if not mqtt.password_file:
        return None
    return read_secret(mqtt.password_file, "mqtt.password_file")


def read_token(path: str) -> str:
    """The pricing API token, fit for an HTTP header; raises ConfigError."""
    return read_secret(path, "pricing.token_file", header_safe=True)


def read_secret(path: str, key: str, *, header_safe: bool = False) -> str:
    """A validated one-line secret; the error names the key and the file, never the content."""
    try:
        return secretfile.read(path, header_safe=header_safe)
    except secretfile.SecretFileError as exc:
        raise ConfigError(f"config key {key}: {exc}") from None


def ssl_context(tls: TlsConfig) -> ssl.SSLContext:
    """The client SSLContext for `[mqtt.tls]`; raises ConfigError naming the file's key."""
    import ssl  # only when TLS is configured

    if tls.key_file and not tls.cert_file:
        raise ConfigError("config key mqtt.tls.key_file: needs mqtt.tls.cert_file")
    for key, path, marker in (("ca_file", tls.ca_file, b"-----BEGIN CERTIFICATE-----"),
                              ("cert_file", tls.cert_file, b"-----BEGIN CERTIFICATE-----"),
                              ("key_file", tls.key_file, b"PRIVATE KEY-----")):
        if path:
            _pem(f"mqtt.tls.{key}", path, marker)
    try:
        context = ssl.create_default_context(cafile=tls.ca_file or None)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"config key mqtt.tls.ca_file: {_ssl_reason(exc)}") from None
    if tls.cert_file:
        try:
            context.load_cert_chain(tls.cert_file, tls.key_file or None, password=_no_passphrase)
        except ValueError as exc:  # raised by _no_passphrase
            raise ConfigError(f"config key mqtt.tls.key_file: {exc}") from None
        except (ssl.SSLError, OSError) as exc:
            if "KEY_VALUES_MISMATCH" in str(exc):
                raise ConfigError("config key mqtt.tls.key_file: does not match "
                                  "mqtt.tls.cert_file") from None
            raise ConfigError(f"config key mqtt.tls.cert_file: {_ssl_reason(exc)}") from None
    return context


def _no_passphrase() -> str:
    # Without a callback OpenSSL would prompt on the terminal for an encrypted key.
    raise ValueError("encrypted private keys are not supported (no passphrase prompt)")


def _ssl_reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror and not hasattr(exc, "library"):
        return exc.strerror
    text = str(getattr(exc, "reason", None) or exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _pem(key: str, path: str, marker: bytes) -> None:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"config key {key}: cannot read {path}: "
                          f"{exc.strerror or type(exc).__name__}") from None
    if b"-----BEGIN " not in data or marker not in data:
        raise ConfigError(f"config key {key}: {path} is not a PEM file "
                          f"(expected a '{marker.decode().strip('-')}' block)")


def writable_dir(path: str, key: str) -> None:
    """Raise ConfigError unless `path` is, or can be created as, a writable directory."""
    target = Path(path)
    probe = target
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        what = "is not a directory" if probe == target else f"cannot be created ({probe} is " \
            "not a directory)"
        raise ConfigError(f"config key {key}: {target} {what}")
    if not os.access(probe, os.W_OK | os.X_OK):
        what = "is not writable" if probe == target else f"cannot be created ({probe} is " \
            "not writable)"
        raise ConfigError(f"config key {key}: {target} {what}")


def _money(config: Config) -> None:
    from agent.model.money import format_amount, format_unit_price

    fmt = config.display.money
    try:
        format_amount(1234567, 3, "EUR", fmt)
        format_unit_price(3950, 4, None, fmt)
    except Exception as exc:  # any template error is a config error, never a traceback
        raise ConfigError(f"config key display.money.template: {type(exc).__name__}: "
                          f"{exc}") from None


def _output(where: str, output: OutputConfig) -> None:
    kind = output.__struct_config__.tag
    if kind == "serial":
        from agent.outputs.serial import SerialConfig, create

        assert isinstance(output, SerialConfig)
        key = "fields" if output.protocol == "nextion" else "template"
        try:
            create(output).render(SAMPLE_VIEW)
        except Exception as exc:
            raise ConfigError(f"config key {where}.{key}: {type(exc).__name__}: {exc}"
                              ) from None
    elif kind == "gpio" or (kind == "hd44780" and getattr(output, "bus", "") == "gpio"):
        from agent.outputs.gpio_backend import check_gpiod

        try:
            check_gpiod()
        except RuntimeError as exc:
            raise ConfigError(f"config key {where}.type: {exc}") from None
