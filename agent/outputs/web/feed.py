"""The web display's views: the newest of each display, and what each page still has to get.

Every connected page (a Server-Sent Events stream) has a queue of one per display: a view that
was not yet written to it is replaced by a newer one, so a slow or stalled page holds at most one
frame per display and never delays the agent, the other pages or the other outputs.
"""

from __future__ import annotations

import asyncio
import re

from agent.model.view import View, encode_view

_LINE_END = re.compile(rb"\r\n|\r|\n")  # what ends a line of an event stream


def frame(evse: int | None, view: View) -> bytes:
    """The SSE event for one display's view: `event: view`, data `{"evse": id|null, "view"}`.

    The JSON may span lines (the signed meter values are embedded as EVerest printed them,
    indented): each line goes in a `data:` field of its own, which the browser joins again.
    """
    lines = _LINE_END.split(item(evse, view))
    return b"event: view\n" + b"".join(b"data: " + line + b"\n" for line in lines) + b"\n"


def item(evse: int | None, view: View) -> bytes:
    """`{"evse": id|null, "view": {...}}` as compact JSON (the view embedded as encoded)."""
    key = b"null" if evse is None else str(evse).encode()
    return b'{"evse":' + key + b',"view":' + encode_view(view) + b"}"


class Subscriber:
    """One page's stream: the frames it has not been sent yet, newest per display."""

    def __init__(self, only: int | None) -> None:
        self.only = only  # one EVSE's page (/evse/{id}) gets only that display's views
        self.pending: dict[int | None, bytes] = {}
        self.wake = asyncio.Event()
        self.gone = False

    def offer(self, evse: int | None, data: bytes) -> None:
        """Queue `data` for this page, replacing an unsent frame of the same display."""
        if self.only is None or evse == self.only:
            self.pending[evse] = data
            self.wake.set()

    def take(self) -> list[bytes]:
        """Everything pending, in display order; the queue is empty afterwards."""
        frames = [self.pending[k] for k in sorted(self.pending, key=_order)]
        self.pending.clear()
        self.wake.clear()
        return frames

    def hang_up(self) -> None:
        """The page went away: wake its writer so that it ends."""
        self.gone = True
        self.wake.set()


class Feed:
    """The newest view of every display and the pages subscribed to them."""

    def __init__(self) -> None:
        self.views: dict[int | None, View] = {}
        self._frames: dict[int | None, bytes] = {}
        self.subscribers: set[Subscriber] = set()

    def update(self, evse: int | None, view: View) -> None:
        """A display's new view: kept, and queued for every page that shows it."""
        self.views[evse] = view
        data = self._frames[evse] = frame(evse, view)
        for subscriber in self.subscribers:
            subscriber.offer(evse, data)

    def displays(self) -> list[int | None]:
        """The displays known so far, in order (EVSE ids ascending)."""
        return sorted(self.views, key=_order)

    def subscribe(self, only: int | None) -> Subscriber:
        """A new page: it gets every current view first, then each change."""
        subscriber = Subscriber(only)
        for evse in self.displays():
            subscriber.offer(evse, self._frames[evse])
        self.subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """The page's stream ended."""
        self.subscribers.discard(subscriber)

    def snapshot(self) -> bytes:
        """`/views.json`: the current views as a JSON array of `{"evse", "view"}`."""
        return b"[" + b",".join(item(e, self.views[e]) for e in self.displays()) + b"]"


def _order(evse: int | None) -> int:
    return -1 if evse is None else evse
