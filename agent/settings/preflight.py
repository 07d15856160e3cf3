"""Start-up checks of what a configuration points at, so `check-config` finds what `run` would.

`check()` runs after `agent.settings.config.load()` in `run` and `check-config`: TLS files
(the SSLContext is built), secret files, templates (rendered once against a sample view), the
state and status directories, and the optional dependencies of configured outputs. Each failure
is one ConfigError line naming the key; no message ever contains a secret.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from agent.model.view import Estimate, Live, LiveTotal, NextPeriod, Total, View
from agent.settings.config import ConfigError
from agent.settings.credentials import read_password, read_token, ssl_context

if TYPE_CHECKING:
    from agent.outputs.base import OutputConfig
    from agent.settings.config import Config

# Every field set, so a template that can fail on some value fails here.
SAMPLE_VIEW = View(
    screen="charging", link="up", session_id="S1", status="Running",
    total=Total(1234567, 3, "EUR", "1234.57 EUR"), stale=True, energy_wh=10800,
    prices=["0.39 EUR/kWh", "0.50 EUR"], idle_price="6.00 EUR/h after 30 min",
    next_period=NextPeriod(from_="2026-11-21T12:00:00Z", prices=["0.29 EUR/kWh"]),
    message="Thank you\nfor charging", language="en", qr_code="https://example.com/r/1",
    updated_at="2026-11-21T10:00:00.000Z", preview=["20 kWh: 7.80 EUR"],
    estimate=Estimate(value="1234.5", currency="EUR", text="1234.50 EUR"), final=False,
    evse=1, evse_id="DE*PNX*E12345*1", meter_public_key="3059301306072A8648CE3D0201",
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
        writable_dir(os.path.dirname(config.status.path) or ".", "status.path")
    for index, output in enumerate(config.output):
        _output(f"output[{index}]", output)


def writable_dir(path: str, key: str) -> None:
    """Raise ConfigError unless `path` is, or can be created as, a writable directory."""
    target = os.path.normpath(path)
    probe = target
    while not os.path.lexists(probe):
        parent = os.path.dirname(probe) or "."
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
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
    elif kind == "web":
        _web(where, output)
    elif kind == "gpio" or (kind == "hd44780" and getattr(output, "bus", "") == "gpio"):
        from agent.outputs.gpio_backend import check_gpiod

        try:
            check_gpiod()
        except RuntimeError as exc:
            raise ConfigError(f"config key {where}.type: {exc}") from None


def _web(where: str, output: OutputConfig) -> None:
    """h11 and segno installed, and the files the web output names usable."""
    from agent.outputs.qrmatrix import encoder

    try:
        import h11  # noqa: F401

        encoder()  # segno's, without the rest of segno (see qrmatrix)
    except ImportError as exc:
        raise ConfigError(f"config key {where}.type: web needs {exc.name} "
                          "(pip install 'cost-agent[web]')") from None
    from agent.outputs.web.config import WebConfig
    from agent.outputs.web.feed import Feed
    from agent.outputs.web.site import Site, SiteError

    assert isinstance(output, WebConfig)
    try:
        Site.load(output, Feed())
    except SiteError as exc:
        raise ConfigError(f"config key {where}.{exc}") from None
