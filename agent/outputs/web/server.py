"""The web display's HTTP server: h11 on asyncio streams, in the agent's own event loop.

Safety, as docs/outputs.md tells the integrator: GET and HEAD only (405), a Host header that
names neither loopback, the listen address, the address the request came to, nor an
`allowed_hosts` entry is refused (421: a DNS rebinding page cannot read the views), the request
head is bounded (431, and 414 for a long target), an idle connection is closed after
`idle_timeout_s`, at most `max_clients` event streams (503) and a bounded number of connections.
A page that does not read gets nothing more after its socket buffer fills, is dropped after
`idle_timeout_s` without progress, and holds at most one frame per display meanwhile (feed.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
import time

import h11

from agent.lanes import Lane
from agent.model.view import View
from agent.outputs.base import OutputStats
from agent.outputs.web.config import WebConfig, parse_listen
from agent.outputs.web.feed import Feed, Subscriber
from agent.outputs.web.qr import svg
from agent.outputs.web.site import SAFETY, Headers, QrCode, Reply, Site, Stream

log = logging.getLogger(__name__)

MAX_HEAD = 8 * 1024
MAX_TARGET = 2 * 1024
MAX_BODY = 0  # GET and HEAD carry none
SPARE_CONNECTIONS = 16  # page loads and asset fetches besides the event streams
RETRY_MAX_S = 5.0
SEND_BUFFER = 32 * 1024
BUGS_LOGGED = 16  # distinct failures of a route logged with their traceback (all are counted)
KEEPALIVE = b": keep-alive\n\nevent: ping\ndata: {}\n\n"
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}
_REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 405: b"Method Not Allowed",
            413: b"Content Too Large", 414: b"URI Too Long", 421: b"Misdirected Request",
            431: b"Request Header Fields Too Large", 500: b"Internal Server Error",
            503: b"Service Unavailable"}


class WebStats(OutputStats):
    """The output's counters in the status file: `ok` counts views taken."""

    listening: str | None = None
    clients: int = 0
    connections: int = 0
    requests: int = 0
    refused: int = 0


class _Refused(Exception):
    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status


class WebOutput:
    """Serves the station's displays to kiosk browsers."""

    def __init__(self, config: WebConfig) -> None:
        self.config = config
        self.name = "web"
        self.stats = WebStats()
        self.feed = Feed()
        self.site: Site | None = None
        self._lane = Lane("web")  # its files at start, QR codes drawn for a page
        self._bugs_logged: set[str] = set()
        self._streams = 0
        self._connections = 0
        self._waiting: dict[asyncio.StreamWriter, None] = {}  # oldest first
        self._max_connections = config.max_clients + SPARE_CONNECTIONS
        self._allowed = _LOOPBACK | {h.lower() for h in config.allowed_hosts}
        address = parse_listen(config.listen)
        if isinstance(address, tuple) and address[0] not in ("0.0.0.0", "::"):
            self._allowed.add(address[0].lower())

    def update(self, evse: int | None, view: View) -> None:
        """A display's newest view, for the pages now and later."""
        self.feed.update(evse, view)
        self.stats.ok += 1

    async def serve(self) -> None:
        """Listen (retrying while the address is taken) and serve until cancelled."""
        self.site = await self._lane.call(Site.load, self.config, self.feed)
        async with asyncio.TaskGroup() as tg:
            server = await self._listen(tg)
            try:
                await asyncio.Future()  # until the agent stops
            finally:
                server.close()
                self._remove_socket()

    async def _listen(self, tg: asyncio.TaskGroup) -> asyncio.Server:
        def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if self._connections >= self._max_connections:
                self.stats.refused += 1
                if not self._waiting:  # every connection is busy: refuse the new one
                    writer.transport.abort()
                    return
                # A flood of silent connections never locks the kiosk out: the one that has
                # waited longest for a request goes.
                oldest = next(iter(self._waiting))
                del self._waiting[oldest]
                oldest.transport.abort()
            sock = writer.get_extra_info("socket")
            if sock is not None and sock.family != socket.AF_UNIX:
                # The kernel's own buffer for a page that does not read stays small (loopback
                # would grow it to megabytes), so such a page is noticed and dropped early.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
            tg.create_task(self._connection(reader, writer))

        address = parse_listen(self.config.listen)
        delay = 0.1
        while True:
            try:
                if isinstance(address, str):
                    self._remove_socket()
                    server = await asyncio.start_unix_server(accept, address,
                                                             limit=MAX_HEAD)
                else:
                    server = await asyncio.start_server(accept, address[0], address[1],
                                                        limit=MAX_HEAD, reuse_address=True)
            except OSError as exc:
                self.stats.failure(self.name, f"listen {self.config.listen}: "
                                              f"{exc.strerror or exc}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            self.stats.success(self.name)
            self.stats.listening = self.config.listen
            url = (f"http://{_host_text(address[0])}:{address[1]}/"
                   if isinstance(address, tuple) else self.config.listen)
            log.info("web display on %s", url)
            return server

    def _remove_socket(self) -> None:
        """A unix socket left behind by a previous run (never a file of another kind)."""
        address = parse_listen(self.config.listen)
        if isinstance(address, str):
            with contextlib.suppress(OSError):
                if stat.S_ISSOCK(os.lstat(address).st_mode):
                    os.unlink(address)

    # ---- one connection ----------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        self._connections += 1
        self.stats.connections = self._connections
        try:
            await self._requests(reader, writer)
        except (ConnectionError, TimeoutError, h11.LocalProtocolError):
            pass
        except Exception as exc:  # a bug ends this connection, never the output
            self._bug(exc)
        finally:
            self._connections -= 1
            self.stats.connections = self._connections
            if writer.transport.get_write_buffer_size():
                writer.transport.abort()  # a page that does not read: drop what it would get
            else:
                writer.close()

    async def _requests(self, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        local = writer.get_extra_info("sockname")
        local_host = local[0].lower() if isinstance(local, tuple) else ""
        while True:
            head = bytearray()
            try:
                # One deadline for the whole request, head and body; until it is all here the
                # connection counts as waiting, the first to go when the connections run out.
                self._waiting[writer] = None
                try:
                    async with asyncio.timeout(self.config.idle_timeout_s):
                        request = await _read_request(conn, reader, head)
                        if request is None:
                            return
                        self.stats.requests += 1
                        self._check(request, local_host)
                        await _read_body(conn, reader)
                finally:
                    self._waiting.pop(writer, None)
            except TimeoutError:
                return  # idle, or a request sent too slowly or never finished
            except h11.RemoteProtocolError as exc:
                # The request line alone over the bound: the target is what is too long.
                status = 414 if b"\n" not in head[:MAX_HEAD] and len(head) >= MAX_HEAD else (
                    exc.error_status_hint)
                await self._refuse(conn, writer, status, str(exc))
                return
            except _Refused as exc:
                await self._refuse(conn, writer, exc.status, str(exc))
                return
            head_only = request.method == b"HEAD"
            try:
                answer = await self._answer(request.target, head_only)
            except Exception as exc:  # a bug in a route: 500 on this connection only
                self._bug(exc)
                await self._refuse(conn, writer, 500, "the route failed")
                return
            if isinstance(answer, Stream):
                await self._stream(conn, reader, writer, answer)
                return
            await self._send(conn, writer, answer, head_only)
            if conn.our_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()

    async def _answer(self, target: bytes, head_only: bool) -> Reply | Stream:
        """What the route of `target` answers (a Stream only for a GET of the events)."""
        assert self.site is not None
        answer = self.site.route(target.decode("ascii", "replace"))
        if isinstance(answer, Stream):
            return Reply(200, b"text/event-stream", b"", b"no-store") if head_only else answer
        if isinstance(answer, QrCode):
            code = await self._lane.call(svg, answer.payload)
            return (Reply(200, b"image/svg+xml", code, b"no-store") if code is not None
                    else Reply(404, b"text/plain; charset=utf-8", b"too long\n"))
        return answer

    def _bug(self, exc: Exception) -> None:
        """Count a bug met while serving; log each distinct one once, with its traceback."""
        text = f"{type(exc).__name__}: {exc}"[:200]
        self.stats.failed += 1
        self.stats.last_error = text
        self.stats.last_error_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if text not in self._bugs_logged and len(self._bugs_logged) < BUGS_LOGGED:
            self._bugs_logged.add(text)
            log.error("output %s: serving a request failed: %s", self.name, text,
                      exc_info=exc)

    def _check(self, request: h11.Request, local_host: str) -> None:
        if request.method not in (b"GET", b"HEAD"):
            raise _Refused(405, "only GET and HEAD")
        if len(request.target) > MAX_TARGET:
            raise _Refused(414, "target too long")
        host = next((v for k, v in request.headers if k == b"host"), None)
        if host is None:
            raise _Refused(400, "no Host header")
        name = _host_name(host.decode("ascii", "replace"))
        if name not in self._allowed and name != local_host:
            raise _Refused(421, "Host is not this display's")

    async def _send(self, conn: h11.Connection, writer: asyncio.StreamWriter, reply: Reply,
                    head_only: bool, extra: Headers | None = None) -> None:
        headers = [(b"content-type", reply.content_type),
                   (b"content-length", str(len(reply.body)).encode()),
                   (b"cache-control", reply.cache), *SAFETY, *(extra or ())]
        writer.write(conn.send(h11.Response(status_code=reply.status, headers=headers,
                                            reason=_REASONS.get(reply.status, b""))))
        if not head_only and reply.body:
            writer.write(conn.send(h11.Data(data=reply.body)))
        writer.write(conn.send(h11.EndOfMessage()))
        async with asyncio.timeout(self.config.idle_timeout_s):
            await writer.drain()

    async def _refuse(self, conn: h11.Connection, writer: asyncio.StreamWriter, status: int,
                      why: str) -> None:
        """Answer `status` and close: what was asked is not served."""
        self.stats.refused += 1
        log.debug("web: refused (%d): %s", status, why[:100])
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        extra = [(b"connection", b"close")]
        if status == 405:
            extra.append((b"allow", b"GET, HEAD"))
        await self._send(conn, writer, Reply(status, b"text/plain; charset=utf-8",
                                             f"{status}\n".encode(), b"no-store"), False, extra)

    # ---- an event stream ---------------------------------------------------------------

    async def _stream(self, conn: h11.Connection, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter, stream: Stream) -> None:
        if self._streams >= self.config.max_clients:
            await self._refuse(conn, writer, 503, "max_clients streams open")
            return
        self._streams += 1
        self.stats.clients = self._streams
        subscriber = self.feed.subscribe(stream.only)
        try:
            writer.write(conn.send(h11.Response(status_code=200, reason=b"OK", headers=[
                (b"content-type", b"text/event-stream"), (b"cache-control", b"no-store"),
                *SAFETY])))
            # The page reconnects 2 s after losing the agent (an agent restart takes ~1 s).
            writer.write(conn.send(h11.Data(data=b"retry: 2000\n\n")))
            async with asyncio.TaskGroup() as tg:
                hang_up = tg.create_task(_until_closed(reader, subscriber))
                try:
                    await self._feed_page(conn, writer, subscriber)
                finally:
                    hang_up.cancel()
        finally:
            self.feed.unsubscribe(subscriber)
            self._streams -= 1
            self.stats.clients = self._streams

    async def _feed_page(self, conn: h11.Connection, writer: asyncio.StreamWriter,
                         subscriber: Subscriber) -> None:
        """Write every pending frame; a keep-alive when nothing changed for `keepalive_s`."""
        try:
            while not subscriber.gone:
                try:
                    async with asyncio.timeout(self.config.keepalive_s):
                        await subscriber.wake.wait()
                    data = b"".join(subscriber.take())
                except TimeoutError:
                    data = KEEPALIVE
                if subscriber.gone:
                    return
                writer.write(conn.send(h11.Data(data=data)))
                # A page that stopped reading gets dropped instead of piling up frames.
                async with asyncio.timeout(self.config.idle_timeout_s):
                    await writer.drain()
        except (ConnectionError, TimeoutError):
            return


async def _read_request(conn: h11.Connection, reader: asyncio.StreamReader,
                        head: bytearray) -> h11.Request | None:
    """The next request's head; None when the client closed the connection."""
    while True:
        event = await _next_event(conn, reader, head)
        if isinstance(event, h11.Request):
            return event
        if not isinstance(event, h11.Data | h11.EndOfMessage):
            return None  # ConnectionClosed, or PAUSED after a close


async def _read_body(conn: h11.Connection, reader: asyncio.StreamReader) -> None:
    """The rest of a GET or HEAD: there must be no body."""
    while True:
        event = await _next_event(conn, reader, None)
        if isinstance(event, h11.Data) and len(event.data) > MAX_BODY:
            raise h11.RemoteProtocolError("a body with GET", error_status_hint=413)
        if not isinstance(event, h11.Data):
            return


async def _next_event(conn: h11.Connection, reader: asyncio.StreamReader,
                      head: bytearray | None) -> object:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        data = await reader.read(4096)
        if head is not None and len(head) <= MAX_HEAD:
            head += data[:MAX_HEAD + 1 - len(head)]
        conn.receive_data(data)


async def _until_closed(reader: asyncio.StreamReader, subscriber: Subscriber) -> None:
    """Ends the page's stream as soon as it closes its side (it sends nothing more)."""
    with contextlib.suppress(ConnectionError):
        while await reader.read(1024):
            pass
    subscriber.hang_up()


def _host_name(host: str) -> str:
    """The name in a Host header, without the port; IPv6 without brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    name, sep, port = host.rpartition(":")
    return name if sep and port.isdigit() else host


def _host_text(host: str) -> str:
    return f"[{host}]" if ":" in host else host
