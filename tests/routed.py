"""A Router as the agent runs it: each EVSE's display state owns its running session.

The router asks the states (`EvseSessions`); every session event and session_info reaches the
router first and then the EVSE's display, in the order the agent's inbox applies them.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.everest.evse_manager import SessionEvent, SessionInfo
from agent.everest.session_cost import SessionCost, TariffMessage
from agent.model.display import DisplayModel
from agent.model.routing import Held, Router
from agent.model.state import DisplayConfig, State


class RoutedStation:
    """The Router of `module_ids` with one display state per EVSE."""

    def __init__(self, module_ids: Sequence[str], **limits: int) -> None:
        self.models = {m: DisplayModel(DisplayConfig(), evse=i)
                       for i, m in enumerate(module_ids, 1)}
        self.states = {m: State(link_up=True) for m in module_ids}
        self.router = Router(module_ids, self, **limits)

    # ---- EvseSessions: asked by the router ----
    def running(self, module_id: str) -> str | None:
        """The EVSE's session, as its display state holds it."""
        return self.states[module_id].evse_session

    def unnamed(self, module_id: str) -> bool:
        """The EVSE's display state has a session no event named."""
        return self.states[module_id].unnamed_session

    # ---- what the inbox does ----
    def event(self, module_id: str, event: SessionEvent, now: float = 0.0) -> list[Held]:
        """The router learns `event`, then the EVSE's display applies it."""
        held = self.router.event(module_id, event)
        self._apply(module_id, event, now)
        return held

    def info(self, module_id: str, info: SessionInfo, now: float = 0.0) -> None:
        """The router learns `info`, then the EVSE's display applies it."""
        self.router.info(module_id, info)
        self._apply(module_id, info, now)

    def restored(self, module_id: str, session_id: str) -> None:
        """After a restart: the EVSE's saved state says `session_id` runs there."""
        state = self.states[module_id]
        self.states[module_id] = State(link_up=True, evse_session=session_id,
                                       default_price=state.default_price)

    def session_cost(self, msg: SessionCost, now: float = 0.0) -> tuple[str, ...]:
        """Where the router sends `msg`."""
        return self.router.session_cost(msg, now)

    def tariff(self, msg: TariffMessage, now: float = 0.0) -> tuple[str, ...]:
        """Where the router sends `msg`."""
        return self.router.tariff(msg, now)

    def take_unassigned(self, now: float = 0.0) -> list[str]:
        """The router's reports of sessions no event named."""
        return self.router.take_unassigned(now)

    def take_corrections(self) -> list[tuple[str, str]]:
        """The router's corrections of wrong guesses."""
        return self.router.take_corrections()

    def next_report_at(self) -> float | None:
        """When the router next has an unnamed session to report."""
        return self.router.next_report_at()

    def _apply(self, module_id: str, event: SessionEvent | SessionInfo, now: float) -> None:
        self.states[module_id] = self.models[module_id].update(self.states[module_id], event, now)
