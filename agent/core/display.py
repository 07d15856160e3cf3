"""One display of the station in the core: its model, state and view (one per EVSE, or one for
the whole station without `[[evse]]`). Its outputs and snapshot file are the shell's."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import msgspec

from agent.core.counters import wall_clock_text
from agent.core.effects import Effects
from agent.core.watch import ApiWatch
from agent.everest.session_cost import SessionCost
from agent.model.display import DisplayModel
from agent.model.state import Event, State
from agent.model.view import View, same_content

if TYPE_CHECKING:
    from agent.core.counters import Counters
    from agent.settings.config import EvseConfig

log = logging.getLogger(__name__)

# What a payload asks for: an event for a display, or a heartbeat id for an API watch.
Delivery = tuple["Display", Event] | tuple[ApiWatch, int]


class Display:
    """Applies events to one display state; each changed view becomes an effect."""

    def __init__(self, model: DisplayModel, evse: EvseConfig | None = None,
                 watch: ApiWatch | None = None, counters: Counters | None = None) -> None:
        self.model = model
        self.evse = evse
        self.watch = watch  # its EVSE manager API's heartbeats ([[evse]])
        self.counters = counters  # its EVSE manager API's payloads ([[evse]])
        self.key: int | None = evse.id if evse is not None else None
        self.state = State()
        self.view: View | None = None
        self._late_logged = 0

    @property
    def name(self) -> str:
        """`evse 2` or `station`, for log lines and the status file."""
        return f"evse {self.key}" if self.key is not None else "station"

    def apply(self, event: Event, now: float, fx: Effects) -> bool:
        """Feed one event to the model; True when the state changed (then it is to be saved)."""
        new = self.model.update(self.state, event, now)
        if new is self.state:
            return False
        if new.late_results > self._late_logged and isinstance(event, SessionCost):
            self._late_logged = new.late_results
            log.warning("%s: ignored a late %s session_cost of session %s: session %s is on "
                        "screen", self.name, event.status, event.session_id,
                        self.state.session.session_id if self.state.session else None)
        self.state = new
        fx.saves.append((self.key, new))
        return True

    def publish(self, wall: float, fx: Effects) -> None:
        """Render the view; a change of content is an effect, stamped with `wall`."""
        view = self.model.view(self.state)
        if same_content(view, self.view):
            return
        self.view = msgspec.structs.replace(view, updated_at=wall_clock_text(wall))
        fx.views.append((self.key, self.view))
