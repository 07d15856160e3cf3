"""What each page of the web display is sent: every current view first, then only the newest
view of each display it has not been sent yet (a queue of one per display and page)."""

from __future__ import annotations

import json

import msgspec

from agent.model.view import SignedMeter, View
from agent.outputs.web.feed import Feed


def view(screen: str, session: str | None = None) -> View:
    return View(screen=screen, link="up", session_id=session)  # type: ignore[arg-type]


def items(frames: list[bytes]) -> list[tuple[int | None, str]]:
    """(evse, screen) of each SSE frame."""
    out = []
    for frame in frames:
        event, data = frame.decode().rstrip("\n").split("\n")
        assert event == "event: view" and data.startswith("data: ")
        item = json.loads(data[6:])
        out.append((item["evse"], item["view"]["screen"]))
    return out


def test_a_new_page_gets_every_current_view_in_evse_order() -> None:
    feed = Feed()
    feed.update(2, view("charging", "b"))
    feed.update(1, view("price"))
    page = feed.subscribe(None)
    assert items(page.take()) == [(1, "price"), (2, "charging")]
    assert page.take() == []


def test_a_page_that_is_behind_gets_only_the_newest_view_of_each_display() -> None:
    feed = Feed()
    feed.update(1, view("price"))
    feed.update(2, view("price"))
    page = feed.subscribe(None)
    page.take()
    for screen in ("tariff", "charging", "idle"):
        feed.update(1, view(screen, "a"))
    feed.update(2, view("charging", "b"))
    assert items(page.take()) == [(1, "idle"), (2, "charging")]
    assert not page.wake.is_set()


def test_a_connector_page_gets_its_own_display_only() -> None:
    feed = Feed()
    feed.update(1, view("price"))
    feed.update(2, view("price"))
    page = feed.subscribe(2)
    feed.update(1, view("charging", "a"))
    feed.update(2, view("tariff"))
    assert items(page.take()) == [(2, "tariff")]


def test_a_page_that_left_is_sent_nothing_and_the_snapshot_has_every_display() -> None:
    feed = Feed()
    feed.update(None, view("price"))
    page = feed.subscribe(None)
    feed.unsubscribe(page)
    page.take()
    feed.update(None, view("charging", "s"))
    assert page.take() == []
    [only] = json.loads(feed.snapshot())
    assert only["evse"] is None
    assert (only["view"]["screen"], only["view"]["session_id"]) == ("charging", "s")


def test_a_view_spanning_lines_is_sent_as_data_lines_the_browser_joins_again() -> None:
    """The signed meter values are embedded as EVerest printed them (indented, with line
    ends); an event stream's data field ends at a line end, so each line gets its own."""
    record = b'{\n    "encoding_method": "OCMF",\r\n    "signed_meter_data": "OCMF|{}|{}"\r}'
    signed = View(screen="finished", link="up", signed_meter=SignedMeter(end=msgspec.Raw(record)))
    feed = Feed()
    feed.update(1, signed)
    [frame] = feed.subscribe(None).take()
    lines = frame.split(b"\n")
    assert lines[0] == b"event: view" and lines[-2:] == [b"", b""]
    assert all(line.startswith(b"data: ") for line in lines[1:-2])
    joined = b"\n".join(line[6:] for line in lines[1:-2])  # as EventSource joins them
    assert json.loads(joined)["view"]["signed_meter"]["end"] == json.loads(record)
