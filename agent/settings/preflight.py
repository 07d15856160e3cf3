"""Start-up checks of what a configuration points at, so `check-config` finds what `run` would.

`check()` runs after `agent.settings.config.load()` in `run` and `check-config`: TLS files
(the SSLContext is built), secret files, templates (rendered once against a sample view), the
state and status directories, and the optional dependencies of configured outputs. Each failure
is one ConfigError line naming the key; no message ever contains a secret.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from agent.model.money import format_amount, format_unit_price
from agent.outputs.base import OutputConfig, Unusable
from agent.outputs.registry import load_kind
from agent.settings.config import ConfigError
from agent.settings.credentials import read_password, read_token, ssl_context

if TYPE_CHECKING:
    from agent.settings.config import Config

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
    fmt = config.display.money
    try:
        format_amount(1234567, 3, "EUR", fmt)
        format_unit_price(3950, 4, None, fmt)
    except Exception as exc:  # any template error is a config error, never a traceback
        raise ConfigError(f"config key display.money.template: {type(exc).__name__}: "
                          f"{exc}") from None


def _output(where: str, output: OutputConfig) -> None:
    """What the output's kind says it needs (its `preflight`, when it has one)."""
    check = getattr(load_kind(str(output.__struct_config__.tag)), "preflight", None)
    if not callable(check):
        return
    try:
        check(output)
    except Unusable as exc:
        raise ConfigError(f"config key {where}.{exc.key}: {exc}") from None
