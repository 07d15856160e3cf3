"""The broker link in the shape of aiomqtt: one connection is an async context manager with an
async iterator of messages; failures are typed and say their cause in one line.

gmqtt does the protocol. Its own reconnect loop is switched off (it spawns untracked tasks) and
its logging is demoted to DEBUG without tracebacks: the agent reports each event itself.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator
from typing import Any, Self

from gmqtt import Client, MQTTConnectError, Subscription
from gmqtt.mqtt.constants import MQTTv311

from agent.settings.config import MqttConfig

log = logging.getLogger(__name__)

BACKOFF_START_S = 0.1
# Messages not yet taken by the consumer; beyond this the oldest are dropped and counted.
QUEUE_LIMIT = 4096
CLOSE_TIMEOUT_S = 0.5

# MQTT 3.1.1 CONNACK return codes, as the agent says them.
_CONNACK = {1: "unacceptable protocol version", 2: "client id rejected",
            3: "broker unavailable", 4: "bad user name or password", 5: "not authorised"}


class MqttError(Exception):
    """The broker could not be reached or the connection ended; str() is the cause."""


class ConnectFailed(MqttError):
    """A connection attempt failed (refused, timed out, TLS, CONNACK error)."""


class ConnectionLost(MqttError):
    """An established connection ended."""


_PLAIN = (str, int, float, bool, type(None))


class _GmqttLogFilter(logging.Filter):
    """gmqtt narrates (and dumps tracebacks for) expected network errors: keep it at DEBUG.

    And it logs raw packets at DEBUG (`cmd: 0x30, packet: b'...'`, `RECV ..., payload: ...`):
    a PUBLISH of EVerest carries drivers' RFID tokens (tariff_message `identifier_id`,
    session_event `id_tag`). No token at any level: every argument that is not a plain value
    (bytes, messages, packets) is replaced by its size before the line is formatted.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        args = record.args if isinstance(record.args, tuple) else (record.args,)
        record.args = tuple(_redacted(arg) for arg in args) if record.args else record.args
        if not isinstance(record.msg, str):  # a message object logged as the format string
            record.msg, record.args = f"<{type(record.msg).__name__}>", ()
        return logging.getLogger().isEnabledFor(logging.DEBUG)


def _redacted(arg: object) -> object:
    if isinstance(arg, _PLAIN):
        return arg
    if isinstance(arg, bytes | bytearray | memoryview):
        return f"<{len(arg)} bytes>"
    if isinstance(arg, list | tuple) and all(isinstance(a, _PLAIN) for a in arg):
        return arg  # topic lists, QoS lists
    return f"<{type(arg).__name__}>"


_GMQTT_LOG = logging.getLogger("agent.process.mqtt.gmqtt")
_FILTER = _GmqttLogFilter()


def quiet_gmqtt_logs() -> None:
    """Put every gmqtt logger (and the client's own) behind the filter; idempotent.

    Called when the link starts: a filter on a parent logger does not see its children's
    records, so each logger gmqtt created at import gets it.
    """
    for name in [_GMQTT_LOG.name, "gmqtt",
                 *(n for n in logging.Logger.manager.loggerDict if n.startswith("gmqtt."))]:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


class _Client(Client):  # type: ignore[misc]
    """gmqtt client whose own reconnect loop is off: the runtime owns reconnection."""

    async def reconnect(self, delay: bool = False) -> None:
        return None


def describe(exc: BaseException) -> str:
    """One line saying why a connection failed, without a traceback."""
    if isinstance(exc, MQTTConnectError):
        code = getattr(exc, "_code", None)
        text = _CONNACK.get(code, exc.message) if isinstance(code, int) else str(exc)
        return f"{text} (CONNACK {code})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:200]


class Connection:
    """One broker connection: `async with Connection(...) as conn`, then iterate messages()."""

    def __init__(self, config: MqttConfig, client_id: str, topics: list[str], *,
                 password: str | None = None, tls: ssl.SSLContext | None = None,
                 timeout_s: float = 5.0) -> None:
        self.config = config
        self.topics = topics
        self.timeout_s = timeout_s
        self.dropped = 0
        self._client = _Client(client_id, clean_session=True, logger=_GMQTT_LOG)
        if config.username:
            self._client.set_auth_credentials(config.username, password)
        self._client.on_message = self._message
        self._client.on_disconnect = self._disconnected
        self._tls: ssl.SSLContext | bool = tls if tls is not None else False
        self._queue: collections.deque[tuple[str, bytes]] = collections.deque()
        self._wake = asyncio.Event()
        self._lost: str | None = None
        self._up = False

    @property
    def where(self) -> str:
        """`host:port` of the broker, for log lines."""
        return f"{self.config.host}:{self.config.port}"

    async def __aenter__(self) -> Self:
        try:
            # asyncio.timeout, never wait_for (here and below): on Python 3.11 wait_for drops a
            # cancel that comes as its step completes, and the stopping agent would then wait on
            # a link that reconnects for ever.
            async with asyncio.timeout(self.timeout_s):
                await self._client.connect(self.config.host, self.config.port, ssl=self._tls,
                                           keepalive=self.config.keepalive_s, version=MQTTv311)
        except TimeoutError:
            await self._abort()
            raise ConnectFailed(f"no answer within {self.timeout_s:.1f} s") from None
        except asyncio.CancelledError:
            await self._abort()
            raise
        except Exception as exc:
            await self._abort()
            raise ConnectFailed(describe(exc)) from None
        # Clean sessions keep no subscriptions: subscribe on every connection.
        self._client.subscribe([Subscription(t, qos=0) for t in self.topics])
        self._up = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        was_up, self._up = self._up, False
        try:
            if was_up and self._lost is None:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(CLOSE_TIMEOUT_S):
                        await self._client.disconnect()
        finally:
            await self._abort()

    @property
    def up(self) -> bool:
        """The connection is established and not lost."""
        return self._up and self._lost is None

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> bool:
        """Publish (QoS 0, not retained unless said); False when the connection is not up."""
        if not self.up:
            return False
        self._client.publish(topic, payload, qos=qos, retain=retain)
        return True

    async def messages(self) -> AsyncIterator[tuple[str, bytes]]:
        """(topic, payload) as they arrive; raises ConnectionLost when the connection ends."""
        queue = self._queue
        while True:
            while queue:
                yield queue.popleft()
            if self._lost is not None:
                raise ConnectionLost(self._lost)
            self._wake.clear()
            await self._wake.wait()

    def _message(self, client: _Client, topic: str, payload: bytes, qos: int,
                 properties: Any) -> int:
        if len(self._queue) >= QUEUE_LIMIT:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append((topic, payload))
        self._wake.set()
        return 0

    def _disconnected(self, client: _Client, packet: Any, exc: Exception | None = None) -> None:
        if self._lost is None:
            self._lost = "connection lost" if exc is None else f"connection lost: {describe(exc)}"
        self._wake.set()

    async def _abort(self) -> None:
        # A half-open attempt must not keep its socket (or gmqtt's keepalive timer).
        self._client._is_active = False
        transport_owner = getattr(self._client, "_connection", None)
        if transport_owner is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await transport_owner.close()
