"""Every payload from EVerest: checked, decoded into typed messages, counted and routed to the
panel(s) it belongs to. The session cost API is station-wide; each EVSE has its own API."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

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
from agent.model.display import Event
from agent.process.panel import Panel
from agent.process.status import Counters
from agent.process.supervise import ApiWatch
from agent.settings.config import Config

if TYPE_CHECKING:
    from agent.model.routing import Router

log = logging.getLogger(__name__)

Handler = Callable[[bytes, float], None]
Deliver = Callable[[Panel, "SessionCost | TariffMessage | DefaultPrice", float], None]
OnHeartbeat = Callable[[ApiWatch, int, float], None]


class Inbox:
    """Topic -> handler for both APIs; `routes` is what the broker link subscribes to."""

    def __init__(self, config: Config, panels: list[Panel], session_api: ApiWatch,
                 counters: Counters, deliver: Deliver, heartbeat: OnHeartbeat,
                 now: float) -> None:
        self.panels = panels
        self.session_api = session_api
        self.counters = counters
        self._deliver = deliver
        self._heartbeat = heartbeat
        self._limit = config.mqtt.max_payload_bytes
        base = config.everest.base()
        self.routes: dict[str, Handler] = {
            base + "e2m/" + name: self._session_cost_api(name) for name in TOPICS}
        evse_panels = [p for p in panels if p.evse is not None]
        self.router: Router | None = None
        if evse_panels:
            from agent.model.routing import Router

            self.router = Router([p.evse.module_id for p in evse_panels if p.evse])
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

    def _accept(self, counters: Counters, name: str, payload: bytes, now: float,
                decoder: Callable[[str, bytes], object]) -> object | None:
        """The decoded message, or None (cleared, oversized or invalid: counted, logged)."""
        if not payload:
            # A retained message was cleared (zero bytes): nothing to show, nothing wrong.
            counters.cleared[name] += 1
            return None
        counters.received[name] += 1
        counters.last_received = now
        if len(payload) > self._limit:
            counters.reject(name, f"payload of {len(payload)} bytes exceeds {self._limit}",
                            payload[:200], now)
            return None
        try:
            return decoder(name, payload)
        except DecodeError as exc:
            counters.reject(name, exc.reason, payload, now)
            return None

    def _session_cost_api(self, name: str) -> Handler:
        def on_payload(payload: bytes, now: float) -> None:
            msg: Message | None = self._accept(  # type: ignore[assignment]
                self.counters, name, payload, now, decode)
            match msg:
                case None | Cleared():
                    pass
                case Heartbeat():
                    self._heartbeat(self.session_api, msg.id, now)
                case DefaultPrice():  # station-wide
                    for panel in self.panels:
                        self._deliver(panel, msg, now)
                case TariffMessage() | SessionCost():
                    self._route(msg, now)
        return on_payload

    def _route(self, msg: TariffMessage | SessionCost, now: float) -> None:
        router = self.router
        if router is None:
            targets = self.panels
        else:
            ids = router.tariff(msg) if isinstance(msg, TariffMessage) else (
                router.session_cost(msg, now))
            targets = [p for p in self.panels if p.evse and p.evse.module_id in ids]
            for session_id in router.take_unassigned(now):
                log.warning("session %s: no EVSE's events name it; its costs are not shown",
                            session_id)
        for panel in targets:
            self._deliver(panel, msg, now)

    def _evse_api(self, panel: Panel, name: str) -> Handler:
        from agent.everest.evse_manager import EvseId, SessionEvent, SessionInfo, decode_evse

        assert panel.evse is not None
        module = panel.evse.module_id
        counters = self.evse_counters[module]

        def on_payload(payload: bytes, now: float) -> None:
            msg = self._accept(counters, name, payload, now, decode_evse)
            match msg:
                case Heartbeat():
                    assert panel.watch is not None
                    self._heartbeat(panel.watch, msg.id, now)
                case SessionEvent():
                    held = self.router.event(module, msg) if self.router else []
                    panel.apply(msg, now)
                    for late in held:  # costs/tariffs that waited for this session's EVSE
                        self._deliver(panel, late, now)
                case SessionInfo() | EvseId():
                    event: Event = msg
                    panel.apply(event, now)
                case _:
                    pass
        return on_payload
