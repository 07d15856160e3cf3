"""Every payload from EVerest: checked, decoded into typed messages, counted and routed to the
panel(s) it belongs to. The session cost API is station-wide; each EVSE has its own API."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, assert_never

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
from agent.model.state import Event
from agent.process.panel import Panel
from agent.process.status import Counters
from agent.process.supervise import ApiWatch
from agent.settings.config import Config

if TYPE_CHECKING:
    from agent.model.routing import Router

log = logging.getLogger(__name__)

# What a payload asks for: an event for a panel, or a heartbeat id for an API watch.
Delivery = tuple[Panel, Event] | tuple[ApiWatch, int]
Handler = Callable[[bytes, float], list[Delivery]]


class Inbox:
    """Topic -> handler for both APIs; `routes` is what the broker link subscribes to.

    A handler checks, decodes, counts and routes one payload, and returns what to apply where;
    the runtime applies it (the inbox never calls back into the agent).
    """

    def __init__(self, config: Config, panels: list[Panel], session_api: ApiWatch,
                 counters: Counters, now: float) -> None:
        self.panels = panels
        self.session_api = session_api
        self.counters = counters
        self._limit = config.mqtt.max_payload_bytes
        base = config.everest.base()
        self.routes: dict[str, Handler] = {
            base + "e2m/" + name: self._session_cost_api(name) for name in TOPICS}
        evse_panels = [p for p in panels if p.evse is not None]
        self.router: Router | None = None
        if evse_panels:
            from agent.model.routing import Router

            # The router asks each EVSE's display state which session runs there (its owner).
            self.router = Router([p.evse.module_id for p in evse_panels if p.evse], self)
        self._by_module = {p.evse.module_id: p for p in evse_panels if p.evse is not None}
        self.evse_counters: dict[str, Counters] = {}
        if evse_panels:
            from agent.everest.evse_manager import EVSE_TOPICS  # only with [[evse]]
        for panel in evse_panels:
            assert panel.evse is not None
            module = panel.evse.module_id
            self.evse_counters[module] = Counters(now, EVSE_TOPICS, label=f"{module}/")
            evse_base = panel.evse.base(config.everest.topic_prefix)
            for name in EVSE_TOPICS:
                self.routes[evse_base + "e2m/" + name] = self._evse_api(panel, name)

    def running(self, module_id: str) -> str | None:
        """The session the EVSE's events say runs there (held by its display state)."""
        return self._by_module[module_id].state.evse_session

    def unnamed(self, module_id: str) -> bool:
        """The EVSE runs a session no event named (held by its display state)."""
        return self._by_module[module_id].state.unnamed_session

    def _accept(self, counters: Counters, name: str, payload: bytes, now: float,
                decoder: Callable[[str, bytes], object]) -> object | None:
        """The decoded message, or None (cleared, oversized or invalid: counted, logged)."""
        if not counters.admit(name, payload, now, self._limit):
            return None
        try:
            return decoder(name, payload)
        except DecodeError as exc:
            counters.reject(name, exc.reason, payload, now)
            return None

    def _session_cost_api(self, name: str) -> Handler:
        def on_payload(payload: bytes, now: float) -> list[Delivery]:
            msg: Message | None = self._accept(  # type: ignore[assignment]
                self.counters, name, payload, now, decode)
            match msg:
                case None | Cleared():
                    return []
                case Heartbeat():
                    return [(self.session_api, msg.id)]
                case DefaultPrice():  # station-wide
                    return [(panel, msg) for panel in self.panels]
                case TariffMessage() | SessionCost():
                    return self._route(msg, now)
                case _:
                    assert_never(msg)
        return on_payload

    def _route(self, msg: TariffMessage | SessionCost, now: float) -> list[Delivery]:
        router = self.router
        if router is None:
            return [(panel, msg) for panel in self.panels]
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

    def _evse_api(self, panel: Panel, name: str) -> Handler:
        from agent.everest.evse_manager import (
            EvseId,
            MeterPublicKey,
            SessionEvent,
            SessionInfo,
            decode_evse,
        )
        from agent.model.state import SessionMoved

        assert panel.evse is not None and panel.watch is not None
        module, watch = panel.evse.module_id, panel.watch
        counters = self.evse_counters[module]

        def on_payload(payload: bytes, now: float) -> list[Delivery]:
            msg = self._accept(counters, name, payload, now, decode_evse)
            router = self.router
            match msg:
                case Heartbeat():
                    return [(watch, msg.id)]
                case SessionEvent():
                    held = router.event(module, msg) if router else []
                    moved: list[Delivery] = [
                        (self._by_module[m], SessionMoved(sid))
                        for m, sid in (router.take_corrections() if router else [])]
                    waited: list[Delivery] = [(panel, late) for late in held]
                    if msg.event in ("TransactionFinished", "SessionFinished"):
                        # what waited for the session's name came before its end
                        return [*moved, *waited, (panel, msg)]
                    return [*moved, (panel, msg), *waited]
                case SessionInfo():
                    if router is not None:
                        router.info(module, msg)
                    return [(panel, msg)]
                case EvseId() | MeterPublicKey():
                    return [(panel, msg)]
                case _:
                    return []
        return on_payload
