"""What the station core asks of the world after an input: the shell carries it out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.model.state import State
from agent.model.view import View

if TYPE_CHECKING:
    from agent.model.display_messages import Board


class FetchRate:
    """Ask the pricing API for the Rate of the driver with `tag_id` (the local pricing), for
    the displays `keys`; then give the answer back with `Station.rate_fetched(keys, ...)`."""

    __slots__ = ("evse_id", "keys", "tag_id")

    def __init__(self, tag_id: str, evse_id: str, keys: list[int | None]) -> None:
        self.tag_id = tag_id
        self.evse_id = evse_id
        self.keys = keys  # filled by the inputs that follow with the same authorization

    def __repr__(self) -> str:
        return f"FetchRate(evse_id={self.evse_id!r}, keys={self.keys})"  # never the token


class Effects:
    """The effects of one input, in the order they arose (the same kind together)."""

    __slots__ = ("board", "fetch", "link", "publish", "saves", "views", "wake")

    def __init__(self) -> None:
        # Each display whose view changed: its key (EVSE id, None for the station's one
        # display) and the new view (its `updated_at` stamped with the input's wall clock).
        self.views: list[tuple[int | None, View]] = []
        # MQTT publishes: (topic, payload), QoS 0, not retained (the display_message replies).
        self.publish: list[tuple[str, bytes]] = []
        # The displays whose state changed: (key, state) to snapshot (the newest wins).
        self.saves: list[tuple[int | None, State]] = []
        # The display messages changed: the board to save (without token-bound messages).
        self.board: Board | None = None
        # A Rate to fetch for the local pricing.
        self.fetch: FetchRate | None = None
        # The station's EVerest link verdict changed to this.
        self.link: bool | None = None
        # The next deadline (Station.next_deadline) may have moved.
        self.wake = False

    def __bool__(self) -> bool:
        return bool(self.views or self.publish or self.saves or self.board is not None
                    or self.fetch is not None or self.link is not None or self.wake)
