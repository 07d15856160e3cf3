"""The broker link: gmqtt connection owned by one task, reconnect with capped backoff and jitter."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import Callable, Iterator
from typing import Any

from gmqtt import Client, Subscription
from gmqtt.mqtt.constants import MQTTv311

from agent.config import MqttConfig

log = logging.getLogger(__name__)

BACKOFF_START_S = 0.1


class _Client(Client):  # type: ignore[misc]
    """gmqtt client whose own reconnect loop is off: MqttLink owns reconnection and its tasks."""

    async def reconnect(self, delay: bool = False) -> None:
        return None


def backoff_delays(cap: float, rng: random.Random | None = None) -> Iterator[float]:
    """Exponential delays from 0.1 s doubling up to `cap`, each with 50-100 % jitter."""
    rand = rng or random.Random()
    step = BACKOFF_START_S
    while True:
        yield min(step, cap) * rand.uniform(0.5, 1.0)
        step = min(step * 2, cap)


def tls_context(config: MqttConfig) -> ssl.SSLContext | bool:
    """An SSL context for `[mqtt.tls]`, or False for plain TCP."""
    tls = config.tls
    if tls is None:
        return False
    context = ssl.create_default_context(cafile=tls.ca_file or None)
    if tls.cert_file:
        context.load_cert_chain(tls.cert_file, tls.key_file or None)
    return context


class MqttLink:
    """Keeps one connection to the broker; calls back on messages and on connection changes."""

    def __init__(self, config: MqttConfig, client_id: str, topics: list[str],
                 on_message: Callable[[str, bytes], None],
                 on_connection: Callable[[bool], None], password: str | None = None) -> None:
        self.config = config
        self.client_id = client_id
        self.topics = topics
        self._on_message = on_message
        self._on_connection = on_connection
        self._password = password
        self._ssl = tls_context(config)
        self._client: _Client | None = None
        self._lost = asyncio.Event()
        self._closing = False
        self.connected = False
        self.connects = 0
        self.reconnects = 0
        self.last_error: str | None = None

    def publish(self, topic: str, payload: bytes) -> bool:
        """Publish QoS 0 if connected; False when there is no connection to send on."""
        client = self._client
        if client is None or not self.connected:
            return False
        client.publish(topic, payload, qos=0, retain=False)
        return True

    async def run(self) -> None:
        """Connect, stay connected, reconnect forever; returns only when cancelled."""
        delays = backoff_delays(self.config.reconnect_max_s)
        while True:
            client = self._new_client()
            try:
                await asyncio.wait_for(
                    client.connect(self.config.host, self.config.port, ssl=self._ssl,
                                   keepalive=self.config.keepalive_s, version=MQTTv311),
                    self.config.connect_timeout_s)
            except asyncio.CancelledError:
                await self._drop(client)
                raise
            except Exception as exc:
                await self._drop(client)
                self._note_failure(f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(next(delays))
                continue
            delays = backoff_delays(self.config.reconnect_max_s)
            try:
                await self._lost.wait()
            finally:
                await self._drop(client)
            self._note_failure("connection lost")

    def _new_client(self) -> _Client:
        client = _Client(self.client_id, clean_session=True,
                         logger=logging.getLogger("agent.mqtt.gmqtt"))
        if self.config.username:
            client.set_auth_credentials(self.config.username, self._password)
        client.on_connect = self._connected
        client.on_disconnect = self._disconnected
        client.on_message = self._message
        self._lost.clear()
        self._client = client
        return client

    def _connected(self, client: _Client, flags: int, rc: int, properties: Any) -> None:
        if client is not self._client:
            return
        # Subscriptions are made on every connect: clean sessions keep none.
        client.subscribe([Subscription(t, qos=0) for t in self.topics])
        self.connected = True
        if self.connects:
            self.reconnects += 1
        self.connects += 1
        log.info("connected to %s:%s", self.config.host, self.config.port)
        self.last_error = None
        self._on_connection(True)

    def _disconnected(self, client: _Client, packet: Any, exc: Exception | None = None) -> None:
        if client is not self._client or self._closing:
            return
        was = self.connected
        self.connected = False
        self._lost.set()
        if was:
            self._on_connection(False)

    def _message(self, client: _Client, topic: str, payload: bytes, qos: int,
                 properties: Any) -> int:
        self._on_message(topic, payload)
        return 0

    def _note_failure(self, reason: str) -> None:
        if reason != self.last_error:
            log.warning("broker %s:%s: %s; retrying", self.config.host, self.config.port, reason)
        self.last_error = reason

    async def _drop(self, client: _Client) -> None:
        if self._closing and client is self._client:
            return  # close() has already said goodbye on this connection
        if self.connected and client is self._client:
            self.connected = False
            self._on_connection(False)
        if self._lost.is_set():
            return  # the socket is gone already; a DISCONNECT would only hit a closed transport
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.disconnect(), 0.5)

    async def close(self, final: list[tuple[str, bytes]]) -> None:
        """Publish the last messages (if connected) and disconnect cleanly."""
        self._closing = True
        client = self._client
        if client is not None and self.connected:
            for topic, payload in final:
                client.publish(topic, payload, qos=0, retain=False)
            self.connected = False
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(), 0.5)
