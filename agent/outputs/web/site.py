"""What the web display serves for each path: the page, its assets, the views, the QR codes.

Pure routing over what was loaded at start (`Site.load`); the HTTP connection is in server.py.
"""

from __future__ import annotations

import json
import os
from typing import NamedTuple

from agent.model.view import View
from agent.outputs.web.config import WebConfig
from agent.outputs.web.feed import Feed
from agent.outputs.web.files import read_file
from agent.outputs.web.labels import LabelError, load_labels

MAX_ASSET = 1024 * 1024  # an integrator's style sheet or logo
Headers = list[tuple[bytes, bytes]]
SAFETY: Headers = [
    (b"content-security-policy", b"default-src 'self'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
_IMAGE_TYPES = {".png": b"image/png", ".jpg": b"image/jpeg", ".jpeg": b"image/jpeg",
                ".svg": b"image/svg+xml", ".webp": b"image/webp", ".gif": b"image/gif"}
QR_KINDS = ("receipt", "payment", "message", "transparency")


class Reply(NamedTuple):
    """A whole response."""

    status: int
    content_type: bytes
    body: bytes
    cache: bytes = b"no-cache"


class Stream(NamedTuple):
    """`/events`: a Server-Sent Events stream of one display's views, or all of them."""

    only: int | None


class QrCode(NamedTuple):
    """A QR code to draw (server.py draws it off the loop) from a display's current view."""

    payload: str


class SiteError(ValueError):
    """A file the config names is unusable; the text names the key."""


class Site:
    """The routes of the web display."""

    def __init__(self, config: WebConfig, feed: Feed, assets: dict[str, tuple[bytes, bytes]],
                 page_config: bytes) -> None:
        self.config = config
        self.feed = feed
        self.assets = assets
        self.page_config = page_config

    @classmethod
    def load(cls, config: WebConfig, feed: Feed) -> Site:
        """Read the built-in assets and the integrator's files (blocking: at start only)."""
        # Files beside this module (importlib.resources would cost ~1 MiB of RSS for nothing,
        # pathlib and urllib.parse ~0.6 MiB).
        folder = os.path.join(os.path.dirname(__file__), "assets")
        assets = {
            "/": (b"text/html; charset=utf-8", _read(os.path.join(folder, "index.html"), "/")),
            "/static/app.js": (b"text/javascript; charset=utf-8",
                               _read(os.path.join(folder, "app.js"), "/static/app.js")),
            "/static/style.css": (b"text/css; charset=utf-8",
                                  _read(os.path.join(folder, "style.css"), "/static/style.css")),
            "/static/custom.css": (b"text/css; charset=utf-8",
                                   _read(config.css, "css") if config.css else b""),
        }
        if config.logo:
            kind = _IMAGE_TYPES.get(os.path.splitext(config.logo)[1].lower())
            if kind is None:
                raise SiteError(f"logo: {config.logo} is not a {', '.join(_IMAGE_TYPES)} image")
            assets["/static/logo"] = (kind, _read(config.logo, "logo"))
        try:
            words = load_labels(config.languages, config.labels)
        except LabelError as exc:
            raise SiteError(f"{'labels' if config.labels else 'languages'}: {exc}") from None
        page = {"title": config.title, "languages": config.languages, "labels": words,
                "logo": bool(config.logo), "keepalive_s": config.keepalive_s}
        return cls(config, feed, assets, json.dumps(page, ensure_ascii=False).encode())

    def route(self, target: str) -> Reply | Stream | QrCode:
        """What to answer a GET of `target` (path and query)."""
        path, _, query = target.partition("?")
        asset = self.assets.get(path)
        if asset is not None:
            return Reply(200, *asset)
        if path == "/events":
            only = _parameter(query, "evse")
            if not only:
                return Stream(None)
            evse = _evse(only)
            return Stream(evse) if evse in self.feed.views else _NOT_FOUND
        if path == "/views.json":
            return Reply(200, b"application/json", self.feed.snapshot(), b"no-store")
        if path == "/config.json":
            return Reply(200, b"application/json", self.page_config)
        parts = path.split("/")
        if len(parts) == 3 and parts[1] == "evse" and _evse(parts[2]) in self.feed.views:
            return Reply(200, *self.assets["/"])
        if len(parts) == 4 and parts[1] == "qr" and parts[3].endswith(".svg"):
            return self._qr(parts[2], parts[3].removesuffix(".svg"))
        return _NOT_FOUND

    def _qr(self, display: str, kind: str) -> QrCode | Reply:
        """`/qr/{evse|station}/{receipt|payment|message|transparency}.svg`: that display's
        code now."""
        view = self.feed.views.get(None if display == "station" else _evse(display))
        payload = _qr_payload(view, kind) if view is not None else None
        return QrCode(payload) if payload else _NOT_FOUND


def _qr_payload(view: View, kind: str) -> str | None:
    if kind == "receipt":
        return view.qr_code
    if kind == "payment":
        return view.payment_url
    if kind == "message" and view.display_message is not None:
        return view.display_message.qr_code
    if kind == "transparency":
        return view.transparency_qr
    return None


_NOT_FOUND = Reply(404, b"text/plain; charset=utf-8", b"not found\n")


def _parameter(query: str, name: str) -> str:
    """The first non-empty value of `name` in a query string ("" when absent); the page's
    parameters are numbers, so nothing is percent-decoded."""
    for item in query.split("&"):
        key, _, value = item.partition("=")
        if key == name and value:
            return value
    return ""


def _evse(text: str) -> int:
    """The EVSE id in a path or query (-1, no display's key, when it is not one)."""
    return int(text) if text.isdigit() and len(text) < 6 else -1


def _read(path: str, key: str) -> bytes:
    try:
        return read_file(path, MAX_ASSET)
    except ValueError as exc:
        raise SiteError(f"{key}: {exc}") from None
