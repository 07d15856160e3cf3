"""Credentials a configuration names: secret files (MQTT password, pricing token) and TLS.

Used by the preflight at start and by the broker link when it connects. Every error is one
ConfigError line naming the key and the file, never the content.
"""

from __future__ import annotations

import ssl  # gmqtt has it loaded already: deferring it saves nothing (bench/lazy_imports.py)
from typing import TYPE_CHECKING

from agent.settings import secretfile
from agent.settings.config import ConfigError

if TYPE_CHECKING:
    from agent.settings.config import MqttConfig, TlsConfig


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
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise ConfigError(f"config key {key}: cannot read {path}: "
                          f"{exc.strerror or type(exc).__name__}") from None
    if b"-----BEGIN " not in data or marker not in data:
        raise ConfigError(f"config key {key}: {path} is not a PEM file "
                          f"(expected a '{marker.decode().strip('-')}' block)")
