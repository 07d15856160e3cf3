"""`mqtt` output: each display's view, retained, on the agent's own broker connection.

For vendor HMIs (Qt, LVGL...) that need the computed display state rather than EVerest's raw
topics. The view JSON goes to `{topic_prefix}cost_agent/{module_id}/view` (with `[[evse]]`:
`.../evse/{id}/view`), retained and QoS 1, only when its content changed, and again on each new
broker connection (a broker restarted without persistence has lost it). The runtime binds the
output to its connection (`bind`); this module never opens one of its own.
"""

from __future__ import annotations

from agent.model.view import View, encode_view, same_content
from agent.outputs.base import Broker, OutputConfig


class MqttViewConfig(OutputConfig, tag="mqtt", frozen=True):
    """`[[output]] type = "mqtt"`."""

    # The topic, when not the default one above (e.g. a vendor HMI's own namespace).
    topic: str = ""

    def __post_init__(self) -> None:
        """Reject a topic nobody could publish to."""
        if self.topic and (set(self.topic) & {"+", "#", "\0"}
                           or len(self.topic.encode()) > 65535):
            raise ValueError("topic: an MQTT topic name without wildcards (+, #) or NUL")


CONFIG = MqttViewConfig


class NotConnected(ConnectionError):
    """The broker is not connected: the worker retries with the newest view."""


class MqttViewOutput:
    """Publishes each changed view, retained, to one topic."""

    def __init__(self, config: MqttViewConfig) -> None:
        self.config = config
        self.topic = config.topic
        self._broker: Broker | None = None
        self._last: tuple[View, int] | None = None

    def bind(self, broker: Broker, default_topic: str) -> None:
        """Publish through `broker`, to `default_topic` unless the config names one."""
        self._broker = broker
        self.topic = self.config.topic or default_topic

    async def open(self) -> None:
        """The first view after a (re)start replaces the retained one."""
        if self._broker is None:
            raise RuntimeError("mqtt output used before the runtime bound it to the broker")
        self._last = None

    async def show(self, view: View) -> None:
        """Publish `view` unless this connection already carries the same content."""
        broker = self._broker
        assert broker is not None
        connection = broker.connection
        last = self._last
        if last is not None and last[1] == connection and same_content(view, last[0]):
            return
        if not broker.publish_retained(self.topic, encode_view(view)):
            raise NotConnected("broker not connected")
        self._last = (view, connection)

    async def close(self) -> None:
        """Nothing to release: the connection is the agent's."""


def create(config: OutputConfig) -> MqttViewOutput:
    """Build the output from its validated table."""
    assert isinstance(config, MqttViewConfig)
    return MqttViewOutput(config)
