"""be.ENERGISED pricing API client: one GET per authorization, never blocking the loop.

`GET <api_url>?evseId=..&tag_id=..` with the `x-api-token` header, stdlib urllib in a worker
thread. Errors are classified (`timeout`, `http_status`, `bad_json`, `schema`, `network` (the
connection), `request` (a header or URL http.client refuses), plus `token` for an unreadable
token file), logged once each and counted in `stats`. Any other exception is a bug: it is not
counted as one of these but ends the agent's task group (exit 1), like a bug in any of its loops.

A fetched Rate is one driver's: it goes back to the caller, which binds it to that driver's
session (agent.pricing.live), and is never kept as the station's. The station's own Rate is the
local `structure_file`.

The token never appears in a log line, an error text, `repr()` or the stats: it is validated
(one line of printable ASCII) before it can reach a header, and http.client's refusal is
reported by its type only, since its text quotes the header.

The request runs in its own daemon thread: cancelling `fetch()` returns at once, and the
thread ends on its own (its result is dropped; it never touches the client's state), without
holding up the process's exit the way a thread of the loop's default executor would.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

import msgspec

from agent.pricing.settings import PricingConfig
from agent.pricing.structure import BadJsonError, Rate, StructureError, load_rate
from agent.settings import secretfile

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_BODY = 1 << 20  # a Rate is a few kB; anything near 1 MiB is not one


class PricingStats(msgspec.Struct, kw_only=True):
    """Counters for the status file (no token, no tag ids)."""

    requests: int = 0
    ok: int = 0
    errors: dict[str, int] = msgspec.field(default_factory=dict)
    last_error_kind: str | None = None
    last_error: str | None = None
    last_ok_at: float | None = None
    source: str | None = None  # where the station's Rate came from: structure_file or None


class ApiError(Exception):
    """A classified failure of one request."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def _build_opener() -> urllib.request.OpenerDirector:
    """urllib's default opener minus redirects: they would forward x-api-token elsewhere."""
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), urllib.request.HTTPHandler(),
                    urllib.request.HTTPSHandler(), urllib.request.HTTPDefaultErrorHandler(),
                    urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener


class PricingClient:
    """Fetches Rates for (evse_id, tag) and remembers the last good one."""

    def __init__(self, config: PricingConfig) -> None:
        self.config = config
        self.stats = PricingStats()
        self._opener = _build_opener()
        self._token = self._read_token()
        self.default_rate: Rate | None = self._load_default()

    def __repr__(self) -> str:
        host = urlsplit(self.config.api_url).hostname or "-"
        token = "set" if self._token else "unset"
        return f"PricingClient(host={host!r}, evse_id={self.config.evse_id!r}, token={token})"

    __str__ = __repr__

    def stats_dict(self) -> dict[str, Any]:
        """The counters as plain data for the status file."""
        out: dict[str, Any] = msgspec.to_builtins(self.stats)
        return out

    def _read_token(self) -> str:
        """The API token from token_file, whitespace stripped; '' when unavailable."""
        if not self.config.api_url:
            return ""
        try:
            return secretfile.read(self.config.token_file, header_safe=True)
        except secretfile.SecretFileError as exc:  # its text never holds the content
            self._count("token", f"token_file {exc}")
            return ""

    def _load_default(self) -> Rate | None:
        """The station's Rate: the local structure_file (None without one)."""
        if self.config.structure_file:
            return self._load_file(Path(self.config.structure_file), "structure_file")
        return None

    def _load_file(self, path: Path, source: str) -> Rate | None:
        """Load a Rate file; log and return None if missing or invalid."""
        try:
            rate = load_rate(path.read_bytes())
        except FileNotFoundError:
            log.error("pricing: %s %s does not exist", source, path)
            return None
        except (OSError, StructureError) as exc:
            log.error("pricing: ignoring %s %s: %s", source, path, self._scrub(str(exc)))
            return None
        self.stats.source = source
        log.info("pricing: tariff loaded from %s %s", source, path)
        return rate

    async def fetch(self, tag_id: str, evse_id: str = "") -> Rate | None:
        """The Rate for (evse_id, tag_id) from the API, or None on any error.

        `evse_id` is `pricing.evse_id` when that is set, else the one EVerest reported.
        """
        if not self.config.api_url:
            return None
        self.stats.requests += 1
        if not self._token:
            self._count("token", "no API token available")
            return None
        try:
            # The timeout bounds the whole exchange; the socket timeout bounds the thread.
            async with asyncio.timeout(self.config.timeout_s * 2):
                body = await _in_thread(self._get, tag_id, self.config.evse_id or evse_id)
            rate = self._parse(body)
        except ApiError as exc:
            self._count(exc.kind, exc.detail)
            return None
        except TimeoutError:
            self._count("timeout", f"no answer within {self.config.timeout_s} s")
            return None
        # Anything else is a bug of the agent's: it stops the agent (exit 1), as in every loop.
        self.stats.ok += 1
        self.stats.last_ok_at = time.time()
        log.debug("pricing API: Rate received (costId %s)", rate.cost_id)
        return rate

    def _parse(self, body: bytes) -> Rate:
        """Decode a response body; classify failures as bad_json or schema."""
        try:
            return load_rate(body)
        except BadJsonError as exc:
            raise ApiError("bad_json", str(exc)) from None
        except StructureError as exc:
            raise ApiError("schema", str(exc)) from None

    def _get(self, tag_id: str, evse_id: str) -> bytes:
        """Blocking GET (worker thread); raises ApiError with the failure kind."""
        url = self.config.api_url
        query = urlencode({"evseId": evse_id, "tag_id": tag_id})
        url += ("&" if "?" in url else "?") + query
        request = urllib.request.Request(url, headers={
            "x-api-token": self._token, "Accept": "application/json",
            "User-Agent": "cost-agent"})
        try:
            with self._opener.open(request, timeout=self.config.timeout_s) as response:
                body: bytes = response.read(MAX_BODY + 1)
        except urllib.error.HTTPError as exc:
            exc.close()
            raise ApiError("http_status", f"HTTP {exc.code}") from None
        except TimeoutError:
            raise ApiError("timeout", f"no answer within {self.config.timeout_s} s") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise ApiError("timeout",
                               f"no answer within {self.config.timeout_s} s") from None
            raise ApiError("network", self._scrub(str(exc.reason))) from None
        except (OSError, http.client.HTTPException) as exc:
            raise ApiError("network", self._scrub(f"{type(exc).__name__}: {exc}")) from None
        except ValueError as exc:  # http.client refusing a header or URL: its text quotes it
            raise ApiError("request", f"request refused by http.client: {type(exc).__name__}"
                           ) from None
        if len(body) > MAX_BODY:
            raise ApiError("bad_json", f"response larger than {MAX_BODY} bytes")
        return body

    def _count(self, kind: str, detail: str) -> None:
        """Count and log one error (token scrubbed, tag ids never included)."""
        detail = self._scrub(detail)
        self.stats.errors[kind] = self.stats.errors.get(kind, 0) + 1
        self.stats.last_error_kind = kind
        self.stats.last_error = detail
        log.warning("pricing API error (%s): %s", kind, detail)

    def _scrub(self, text: str) -> str:
        """Defense in depth: no library message may carry the token out."""
        token = getattr(self, "_token", "")
        return text.replace(token, "***") if token else text


async def _in_thread(fn: Callable[..., T], *args: object) -> T:
    """`fn(*args)` in a new daemon thread; cancelling the await abandons the thread's result."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():  # cancelled meanwhile: nobody wants the answer
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def work() -> None:
        result: T | None = None
        error: BaseException | None = None
        try:
            result = fn(*args)
        except BaseException as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: the process is exiting
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=work, name="pricing-fetch", daemon=True).start()
    return await future
