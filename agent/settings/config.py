"""Configuration: TOML decoded into frozen Structs (unknown keys rejected), one error line."""

from __future__ import annotations

import os
import re
import tomllib
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from agent.model.payment import template_error
from agent.model.state import DisplayConfig
from agent.outputs.base import OutputConfig
from agent.outputs.registry import UnknownOutput, load_kind
from agent.pricing.settings import PricingConfig
from agent.structs import Settings

Seconds = Annotated[float, Meta(gt=0)]
# An EVerest API module's id: one MQTT topic level (no separator, no wildcard).
_ONE_LEVEL = r"^[^/+#\x00]+$"
_NO_WILDCARD = r"^[^+#\x00]*$"
ModuleId = Annotated[str, Meta(min_length=1, pattern=_ONE_LEVEL)]
# What a pattern above means, for the one error line (msgspec names the regex).
_PATTERN_TEXT = {_ONE_LEVEL: "must be one topic level, without '/', '+', '#' or NUL",
                 _NO_WILDCARD: "must not contain MQTT wildcards ('+', '#') or NUL"}


def api_base(topic_prefix: str, api: str, module_id: str) -> str:
    """The topic base of an EVerest API module: `{prefix}everest_api/1/{api}/{module_id}/`."""
    return f"{topic_prefix}everest_api/1/{api}/{module_id}/"


class ConfigError(Exception):
    """Invalid configuration; str() is one line naming the key and the problem."""


class EverestConfig(Settings, kw_only=True):
    """`[everest]`: where EVerest's API module publishes."""

    module_id: ModuleId = "session_cost_consumer"
    # Before every topic (e.g. "site/a/"): no MQTT wildcard.
    topic_prefix: Annotated[str, Meta(pattern=_NO_WILDCARD)] = ""

    def base(self) -> str:
        """Topic base, e.g. `everest_api/1/session_cost_consumer/{module_id}/`."""
        return api_base(self.topic_prefix, "session_cost_consumer", self.module_id)


class TlsConfig(Settings, kw_only=True):
    """`[mqtt.tls]`: CA bundle and optional client certificate."""

    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""


class MqttConfig(Settings, kw_only=True):
    """`[mqtt]`: the broker EVerest uses."""

    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=1, le=65535)] = 1883
    username: str = ""
    password_file: str = ""
    tls: TlsConfig | None = None
    client_id: Annotated[str, Meta(max_length=64)] = ""
    keepalive_s: Annotated[int, Meta(ge=0, le=65535)] = 30
    connect_timeout_s: Seconds = 5.0
    reconnect_max_s: Seconds = 2.0
    max_payload_bytes: Annotated[int, Meta(ge=64)] = 65536


class WatchdogConfig(Settings, kw_only=True):
    """`[watchdog]`: communication check cadence and heartbeat supervision."""

    communication_check_interval_s: Seconds = 1.0
    heartbeat_timeout_s: Annotated[float, Meta(ge=0)] = 3.0
    # EVerest's cfg_communication_check_to_s: it raises CommunicationFault after this silence.
    everest_check_timeout_s: Seconds = 5.0
    # `false` on a clean stop ends EVerest's supervision until EVerest restarts: only for
    # decommissioning a display. By default a stop publishes nothing.
    stop_check_on_exit: bool = False
    # From SIGTERM to exit: past this, whatever still holds the stop (an output, a save, the
    # status write) is named and the agent exits 1. Keep it below systemd's TimeoutStopSec.
    stop_limit_s: Annotated[float, Meta(gt=0, le=60)] = 5.0

    def __post_init__(self) -> None:
        if self.communication_check_interval_s >= self.everest_check_timeout_s:
            raise ValueError("communication_check_interval_s: must be below "
                             f"everest_check_timeout_s ({self.everest_check_timeout_s:g})")


class StatusConfig(Settings, kw_only=True):
    """`[status]`: where and how often the status file is written (empty path: never)."""

    path: str = "/run/cost-agent/status.json"
    interval_s: Seconds = 5.0


class StateConfig(Settings, kw_only=True):
    """`[state]`: persisted default price and last finished session (empty dir: none)."""

    dir: str = "/var/lib/cost-agent"


class EvseConfig(Settings, kw_only=True):
    """`[[evse]]`: one EVSE (connector) and EVerest's EVSE manager consumer API module of it."""

    id: Annotated[int, Meta(ge=1)]
    module_id: ModuleId
    # The connector's ad-hoc payment URL template, shown on its price screen (model.payment).
    payment_url: str = ""

    def __post_init__(self) -> None:
        problem = template_error(self.payment_url)
        if problem:
            raise ValueError(f"payment_url: {problem}")

    def base(self, topic_prefix: str) -> str:
        """Topic base, e.g. `everest_api/1/evse_manager_consumer/{module_id}/`."""
        return api_base(topic_prefix, "evse_manager_consumer", self.module_id)


class DisplayMessagesConfig(Settings, kw_only=True):
    """`[display_messages]`: the agent is EVerest's display (its display_message API module)."""

    module_id: ModuleId
    max_messages: Annotated[int, Meta(ge=1, le=256)] = 32
    # NormalCycle messages take turns with the agent's own screen, InFront ones with each other.
    cycle_s: Annotated[float, Meta(ge=1, le=3600)] = 8.0

    def base(self, topic_prefix: str) -> str:
        """Topic base, e.g. `everest_api/1/display_message/{module_id}/`."""
        return api_base(topic_prefix, "display_message", self.module_id)


class Config(Settings, kw_only=True):
    """The whole validated configuration."""

    everest: EverestConfig = msgspec.field(default_factory=EverestConfig)
    mqtt: MqttConfig = msgspec.field(default_factory=MqttConfig)
    watchdog: WatchdogConfig = msgspec.field(default_factory=WatchdogConfig)
    display: DisplayConfig = msgspec.field(default_factory=DisplayConfig)
    status: StatusConfig = msgspec.field(default_factory=StatusConfig)
    state: StateConfig = msgspec.field(default_factory=StateConfig)
    pricing: PricingConfig | None = None
    display_messages: DisplayMessagesConfig | None = None
    evse: list[EvseConfig] = msgspec.field(default_factory=list)
    output: list[OutputConfig] = msgspec.field(default_factory=list)


_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
# Checks in __post_init__ say "field: problem"; msgspec says "unknown field `name`".
_FIELD = re.compile(r"^(?P<field>\w+): (?P<msg>.*)$"
                    r"|^Object contains unknown field `(?P<unknown>[^`]+)`$"
                    r"|^Object missing required field `(?P<missing>[^`]+)`$", re.S)


def _one_line(exc: msgspec.ValidationError, prefix: str = "") -> ConfigError:
    match = _AT.match(str(exc))
    msg, path = (match["msg"], match["path"] or "") if match else (str(exc), "")
    field = _FIELD.match(msg)
    if field and field["field"]:
        path, msg = f"{path}.{field['field']}", field["msg"]
    elif field and field["unknown"]:
        path, msg = f"{path}.{field['unknown']}", "unknown key"
    elif field and field["missing"]:
        path, msg = f"{path}.{field['missing']}", "missing (required)"
    pattern = re.fullmatch(r"Expected `str` matching regex '(.*)'", msg, re.S)
    if pattern:  # msgspec quotes the regex with its backslashes doubled
        msg = _PATTERN_TEXT.get(pattern[1].replace("\\\\", "\\"), msg)
    key = (prefix + path).lstrip(".") or "(top level)"
    if prefix and path:
        key = prefix + ("" if path.startswith("[") else ".") + path.lstrip(".")
    return ConfigError(f"config key {key}: {' '.join(msg.split())}")


def _outputs(tables: Any) -> list[OutputConfig]:
    if not isinstance(tables, list):
        raise ConfigError("config key output: must be an array of tables ([[output]])")
    result: list[OutputConfig] = []
    for i, table in enumerate(tables):
        where = f"output[{i}]"
        if not isinstance(table, dict) or not isinstance(table.get("type"), str):
            raise ConfigError(f"config key {where}.type: missing (a string such as \"file\")")
        try:
            kind = load_kind(table["type"])
            result.append(msgspec.convert(table, kind.CONFIG))
        except UnknownOutput as exc:
            raise ConfigError(f"config key {where}.type: {exc}") from None
        except msgspec.ValidationError as exc:
            raise _one_line(exc, where) from None
        except ImportError as exc:
            raise ConfigError(f"config key {where}.type: cannot load: {exc}") from None
    return result


def parse(text: str) -> Config:
    """Validate TOML text; raises ConfigError."""

    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config syntax: {exc}") from None
    outputs = _outputs(raw.pop("output", []))
    try:
        config = msgspec.convert(raw, Config)
    except msgspec.ValidationError as exc:
        raise _one_line(exc) from None
    _check_evses(config.evse, outputs)
    pricing = config.pricing
    if pricing is not None and pricing.api_url and not pricing.evse_id and not config.evse:
        raise ConfigError("config key pricing.evse_id: required when api_url is set and no "
                          "[[evse]] reports EVerest's EVSE id")
    return msgspec.structs.replace(config, output=outputs)


def _check_evses(evses: list[EvseConfig], outputs: list[OutputConfig]) -> None:
    """EVSE ids and module ids are unique; every output shows a configured EVSE."""
    ids: set[int] = set()
    modules: set[str] = set()
    for i, evse in enumerate(evses):
        if evse.id in ids:
            raise ConfigError(f"config key evse[{i}].id: duplicate id {evse.id}")
        if evse.module_id in modules:
            raise ConfigError(f"config key evse[{i}].module_id: duplicate {evse.module_id!r}")
        ids.add(evse.id)
        modules.add(evse.module_id)
    for i, output in enumerate(outputs):
        if output.STATION:
            if output.evse is not None:
                raise ConfigError(f"config key output[{i}].evse: a "
                                  f"{output.__struct_config__.tag} output serves every EVSE "
                                  "of the station (remove evse)")
        elif output.evse is None:
            if len(evses) > 1:
                raise ConfigError(f"config key output[{i}].evse: required with several "
                                  f"[[evse]] (ids {', '.join(map(str, sorted(ids)))})")
        elif output.evse not in ids:
            raise ConfigError(f"config key output[{i}].evse: no [[evse]] with id {output.evse}")


def load(path: str | os.PathLike[str]) -> Config:
    """Read and validate a config file against its schema; raises ConfigError."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    return parse(text)
