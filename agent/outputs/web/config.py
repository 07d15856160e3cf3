"""The `[[output]] type = "web"` table and its listen address."""

from __future__ import annotations

from typing import Annotated, ClassVar

import msgspec
from msgspec import Meta

from agent.outputs.base import OutputConfig
from agent.outputs.web.labels import valid_language

DEFAULT_LISTEN = "127.0.0.1:8080"


class WebConfig(OutputConfig, tag="web", frozen=True):
    """`[[output]] type = "web"`."""

    STATION: ClassVar[bool] = True

    # host:port ([v6]:port) or unix:/path. Anything but loopback is the integrator's choice.
    listen: str = DEFAULT_LISTEN
    title: str = "EV charging"
    # Files: the integrator's style sheet (loaded after the built-in one) and logo image.
    css: str = ""
    logo: str = ""
    # The page's own labels; the first is the default, a tap on the language switches.
    languages: list[str] = msgspec.field(default_factory=lambda: ["en"])
    # A JSON file with labels for other languages, or to replace built-in ones.
    labels: str = ""
    # Host names (besides loopback and the listen address) a browser may reach the page by.
    allowed_hosts: list[str] = msgspec.field(default_factory=list)
    max_clients: Annotated[int, Meta(ge=1, le=64)] = 8
    idle_timeout_s: Annotated[float, Meta(gt=0, le=300)] = 10.0
    keepalive_s: Annotated[float, Meta(ge=1, le=60)] = 15.0

    def __post_init__(self) -> None:
        """Reject an address or language the page could not use."""
        parse_listen(self.listen)
        if not self.languages or not all(valid_language(c) for c in self.languages):
            raise ValueError("languages: one or more language codes such as \"en\", \"de\"")
        if len(self.title) > 100:
            raise ValueError("title: at most 100 characters")


def parse_listen(listen: str) -> tuple[str, int] | str:
    """`(host, port)` for TCP, or the socket path of `unix:/path`; ValueError otherwise."""
    if listen.startswith("unix:"):
        path = listen[5:]
        if not path.startswith("/") or "\0" in path:
            raise ValueError("listen: unix: needs an absolute socket path (unix:/run/x.sock)")
        return path
    host, sep, port = listen.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or " " in host:
        raise ValueError("listen: host:port ([::1]:8080 for IPv6) or unix:/path")
    return host, int(port)

