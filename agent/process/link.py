"""The broker link the runtime owns: one Connection at a time, messages routed by topic, and
reconnection paced so that EVerest's communication check is satisfied after short outages."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from agent.process.mqtt import Connection, MqttError, quiet_gmqtt_logs
from agent.process.status import BrokerStats
from agent.process.supervise import ReconnectPacer
from agent.settings.config import Config
from agent.settings.credentials import read_password, ssl_context

log = logging.getLogger(__name__)

# Takes each message: its topic, its payload, the monotonic time it was taken.
Receive = Callable[[str, bytes, float], None]


class BrokerLink:
    """Connects, hands every message of `topics` to `receive`, reconnects forever."""

    def __init__(self, config: Config, client_id: str, topics: Sequence[str], receive: Receive,
                 on_change: Callable[[], None]) -> None:
        mqtt = config.mqtt
        self.config = mqtt
        self.client_id = client_id
        self.topics = list(topics)
        self.receive = receive
        self._on_change = on_change
        # Both were validated at load; reading them again turns a file changed since then into
        # a one-line configuration error (exit 2), not a traceback.
        self._password = read_password(mqtt)
        self._tls = ssl_context(mqtt.tls) if mqtt.tls is not None else None
        self.pacer = ReconnectPacer(mqtt.reconnect_max_s, mqtt.connect_timeout_s,
                                    config.watchdog.everest_check_timeout_s)
        self.stats = BrokerStats()
        self.conn: Connection | None = None

    @property
    def connection(self) -> int:
        """Counts connections made: a new value is a new connection."""
        return self.stats.connects

    def publish_retained(self, topic: str, payload: bytes) -> bool:
        """Publish QoS 1, retained (the views for HMIs); False while not connected."""
        conn = self.conn
        return conn is not None and conn.publish(topic, payload, qos=1, retain=True)

    async def run(self) -> None:
        """Stay connected until cancelled."""
        quiet_gmqtt_logs()
        loop = asyncio.get_running_loop()
        while True:
            conn = Connection(self.config, self.client_id, self.topics, password=self._password,
                              tls=self._tls, timeout_s=self.pacer.timeout(loop.time()))
            reason = "connection ended"
            try:
                async with conn:
                    self._connected(conn, loop.time())
                    receive = self.receive
                    async for topic, payload in conn.messages():
                        receive(topic, payload, loop.time())
            except MqttError as exc:
                reason = str(exc)
            finally:
                self._disconnected(conn)
            now = loop.time()
            self.pacer.down(now)
            delay = self.pacer.delay(now)
            if reason != self.stats.last_error:  # each distinct cause once, not every retry
                log.warning("broker %s: %s; retrying in %.1f s", conn.where, reason, delay)
            self.stats.last_error = reason
            await asyncio.sleep(delay)

    def _connected(self, conn: Connection, now: float) -> None:
        self.conn = conn
        self.pacer.up(now)
        stats = self.stats
        stats.connected = True
        stats.reconnects += 1 if stats.connects else 0
        stats.connects += 1
        stats.last_error = None
        log.info("connected to %s", conn.where)
        self._on_change()

    def _disconnected(self, conn: Connection) -> None:
        if self.conn is not conn:
            return
        self.conn = None
        self.stats.connected = False
        self.stats.dropped += conn.dropped
        self._on_change()
