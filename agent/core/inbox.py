"""Every payload from EVerest: checked, decoded into typed messages, counted and routed to the
display(s) it belongs to. The session cost API is station-wide; each EVSE has its own API."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, assert_never

from agent.core.counters import Counters
from agent.core.display import Delivery, Display
from agent.core.watch import ApiWatch
from agent.everest.session_cost import (
    TOPICS,
    Cleared,
    DecodeError,
    DefaultPrice,
    Heartbeat,
    Message,
    SessionCost,
    TariffMessage,
    decode,
)
from agent.settings.config import Config

if TYPE_CHECKING:
    from agent.core.evse_api import EvseApi
    from agent.model.routing import Router

log = logging.getLogger(__name__)

Handler = Callable[[bytes, float, float], list[Delivery]]


class Inbox:
    """Topic -> handler for both APIs; `routes` is what the broker link subscribes to.

    A handler checks, decodes, counts and routes one payload, and returns what to apply where;
    the station applies it (the inbox never calls back into the station).
    """

    def __init__(self, config: Config, displays: list[Display], session_api: ApiWatch,
                 counters: Counters) -> None:
        self.displays = displays
        self.session_api = session_api
        self.counters = counters
        self._limit = config.mqtt.max_payload_bytes
        base = config.everest.base()
        self.routes: dict[str, Handler] = {
            base + "e2m/" + name: self._session_cost_api(name) for name in TOPICS}
        evse_displays = [p for p in displays if p.evse is not None]
        self.router: Router | None = None
        self._by_module = {p.evse.module_id: p for p in evse_displays if p.evse is not None}
        self.evse_counters: dict[str, Counters] = {}
        self.evse_api: EvseApi | None = None
        if evse_displays:
            # The [[evse]] feature's one lazy-import point in the core (agent.core.evse_api).
            from agent.core.evse_api import EvseApi

            # The router asks each EVSE's display state which session runs there (its owner).
            self.evse_api = evse = EvseApi(list(self._by_module), self)
            self.router = evse.router
            for display in evse_displays:
                assert display.evse is not None
                module = display.evse.module_id
                display.counters = self.evse_counters[module] = Counters(
                    counters.started, evse.topics, label=f"{module}/")
                evse_base = display.evse.base(config.everest.topic_prefix)
                for name in evse.topics:
                    self.routes[evse_base + "e2m/" + name] = self._evse_api(display, name)

    def running(self, module_id: str) -> str | None:
        """The session the EVSE's events say runs there (held by its display state)."""
        return self._by_module[module_id].state.evse_session

    def unnamed(self, module_id: str) -> bool:
        """The EVSE runs a session no event named (held by its display state)."""
        return self._by_module[module_id].state.unnamed_session

    def token(self, module_id: str) -> int | None:
        """The hashed token of the EVSE's running session (held by its display state)."""
        return self._by_module[module_id].state.session_token

    def waiting(self, module_id: str) -> bool:
        """The EVSE's session waits for a driver (held by its display state)."""
        return self._by_module[module_id].state.awaiting_authorization

    def _accept(self, counters: Counters, name: str, payload: bytes, now: float, wall: float,
                decoder: Callable[[str, bytes], object]) -> object | None:
        """The decoded message, or None (cleared, oversized or invalid: counted, logged)."""
        if not counters.admit(name, payload, now, self._limit, wall):
            return None
        try:
            return decoder(name, payload)
        except DecodeError as exc:
            counters.reject(name, exc.reason, payload, now, wall)
            return None

    def _session_cost_api(self, name: str) -> Handler:
        def on_payload(payload: bytes, now: float, wall: float) -> list[Delivery]:
            msg: Message | None = self._accept(  # type: ignore[assignment]
                self.counters, name, payload, now, wall, decode)
            return [] if msg is None else self.station_message(msg, now)
        return on_payload

    def station_message(self, msg: Message, now: float) -> list[Delivery]:
        """Where a decoded message of the session cost API goes."""
        match msg:
            case Cleared():
                return []
            case Heartbeat():
                return [(self.session_api, msg.id)]
            case DefaultPrice():  # station-wide
                return [(display, msg) for display in self.displays]
            case TariffMessage() | SessionCost():
                return self.route(msg, now)
            case _:
                assert_never(msg)

    def route(self, msg: TariffMessage | SessionCost, now: float) -> list[Delivery]:
        """The display(s) a tariff or a session cost goes to (none while it is held)."""
        router = self.router
        if router is None:
            return [(display, msg) for display in self.displays]
        ids = router.tariff(msg, now) if isinstance(msg, TariffMessage) else (
            router.session_cost(msg, now))
        self.report_unassigned(now)
        return [(self._by_module[module], msg) for module in ids]

    def report_unassigned(self, now: float) -> None:
        """Log (once each) the sessions whose costs no EVSE's events claimed for a minute."""
        if self.router is not None:
            for session_id in self.router.take_unassigned(now):
                log.warning("session %s: no EVSE's events name it; its costs are not shown",
                            session_id)

    def next_report_at(self) -> float | None:
        """When report_unassigned() may next have something to say (for the clock)."""
        return self.router.next_report_at() if self.router is not None else None

    def _evse_api(self, display: Display, name: str) -> Handler:
        evse = self.evse_api
        assert evse is not None and display.evse is not None
        counters = self.evse_counters[display.evse.module_id]

        def on_payload(payload: bytes, now: float, wall: float) -> list[Delivery]:
            msg = self._accept(counters, name, payload, now, wall, evse.decode)
            return [] if msg is None else evse.deliveries(display, msg, self._by_module)
        return on_payload

    def evse_message(self, display: Display, msg: object) -> list[Delivery]:
        """Where a decoded message of `display`'s EVSE manager API goes (the router learns
        from it first: it asks the display states, which the deliveries then change)."""
        assert self.evse_api is not None
        return self.evse_api.deliveries(display, msg, self._by_module)
