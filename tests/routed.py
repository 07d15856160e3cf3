"""The station core's router, driven as the core drives it, for the routing tests.

A Station with one EVSE display per module id: its own inbox hands each session event and
session_info to the router and the core applies the deliveries (the router asks the display
states, which own each EVSE's running session). Nothing of that order is written again here:
the tests only read the router's answers and the messages an event released.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.core.display import Display
from agent.core.station import Station
from agent.everest.evse_manager import SessionEvent, SessionInfo
from agent.everest.session_cost import SessionCost, TariffMessage
from agent.model.routing import Held, Router
from agent.model.state import SessionMoved, State
from agent.settings.config import parse


class RoutedStation:
    """The core of a station whose EVSE modules are `module_ids` (router `limits` applied)."""

    def __init__(self, module_ids: Sequence[str], **limits: int) -> None:
        if not module_ids or len(set(module_ids)) != len(module_ids):
            Router(module_ids, _Nobody())  # the router's own refusal
        self.module_ids = tuple(module_ids)
        config = parse("".join(f'[[evse]]\nid = {i}\nmodule_id = "{m}"\n'
                               for i, m in enumerate(module_ids, 1))
                       + '[state]\ndir = ""\n[status]\npath = ""\n')
        self.core = Station(config, 0.0)
        self.core.restore({}, "", None, 0.0, 0.0)
        self.core.connection(True, 0.0, 0.0)
        inbox = self.core.inbox
        assert inbox.evse_api is not None
        if limits:
            inbox.router = inbox.evse_api.router = Router(self.module_ids, inbox, **limits)
        assert inbox.router is not None
        self.router = inbox.router
        self._corrections: list[tuple[str, str]] = []

    @property
    def states(self) -> dict[str, State]:
        """Each EVSE's display state, by module id."""
        return {m: d.state for m, d in zip(self.module_ids, self.core.displays, strict=True)}

    def running(self, module_id: str) -> str | None:
        """The EVSE's session, as the core's display state holds it."""
        return self.core.inbox.running(module_id)

    def unnamed(self, module_id: str) -> bool:
        """The core's display state of the EVSE has a session no event named."""
        return self.core.inbox.unnamed(module_id)

    def event(self, module_id: str, event: SessionEvent, now: float = 0.0) -> list[Held]:
        """The core takes `event` from `module_id`; the messages it released for the session."""
        if module_id not in self.module_ids:
            raise ValueError(f"unknown EVSE module id {module_id!r}")
        deliveries = self.core.inbox.evse_message(self._display(module_id), event)
        self.core.deliver(deliveries, now, now)
        released: list[Held] = []
        for target, item in deliveries:
            if isinstance(item, SessionMoved) and isinstance(target, Display):
                self._corrections.append((self.module_ids[self.core.displays.index(target)],
                                          item.session_id))
            elif isinstance(item, SessionCost | TariffMessage):
                released.append(item)
        return released

    def info(self, module_id: str, info: SessionInfo, now: float = 0.0) -> None:
        """The core takes a session_info from `module_id`."""
        self.core.deliver(self.core.inbox.evse_message(self._display(module_id), info), now,
                          now)

    def restored(self, module_id: str, session_id: str) -> None:
        """After a restart: the EVSE's saved state says `session_id` runs there."""
        display = self._display(module_id)
        display.state = State(link_up=True, evse_session=session_id,
                              default_price=display.state.default_price)

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
        """The corrections of wrong guesses the core applied (module id, session id)."""
        out, self._corrections = self._corrections, []
        return out

    def next_report_at(self) -> float | None:
        """When the router next has an unnamed session to report."""
        return self.router.next_report_at()

    def _display(self, module_id: str) -> Display:
        return self.core.displays[self.module_ids.index(module_id)]


class _Nobody:
    def running(self, module_id: str) -> str | None:
        return None

    def unnamed(self, module_id: str) -> bool:
        return False

    def token(self, module_id: str) -> int | None:
        return None

    def waiting(self, module_id: str) -> bool:
        return False
