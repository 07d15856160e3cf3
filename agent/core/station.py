"""The station core: every rule of the station in one synchronous object, without I/O.

Like h11 for HTTP: the shell (agent.process.runtime, or `cost-agent replay`) feeds it what
happened, each input with the monotonic `now` and the wall clock `wall`: a payload on a topic,
the broker connection coming or going, time passing, a Rate fetched. Each input returns the
`Effects` it calls for (views per display, MQTT publishes, what to save, a Rate to fetch, a
link verdict) and the shell carries them out; `next_deadline()` says when time passing will
matter next. No asyncio, thread, socket, file or clock in here: a restart is a new Station
given the snapshots the old one had saved.

It owns each fact once: per display its state (per EVSE, the session that runs there), the
link (the broker connection and every API's heartbeats), the display messages, the pricing
preview; the status file's parts are read from it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from agent.core.counters import Counters
from agent.core.display import Delivery, Display
from agent.core.effects import Effects
from agent.core.inbox import Inbox
from agent.core.pricing import PricingDesk
from agent.core.snapshot import Snapshot, restored
from agent.core.watch import ApiWatch
from agent.everest.session_cost import DefaultPrice, SessionCost, TariffMessage
from agent.everest.session_cost import encode_communication_check as check_payload
from agent.model.display import DisplayModel
from agent.model.state import LinkChanged, Tick
from agent.settings.config import Config

if TYPE_CHECKING:
    from agent.core.messages import MessageDesk
    from agent.pricing.live import LivePricing

log = logging.getLogger(__name__)

# One payload on one topic: what it changes goes into the effects.
Receiver = Callable[[bytes, float, float, Effects], None]


class Station:
    """The whole station's displays and rules; inputs in, effects out."""

    def __init__(self, config: Config, started: float,
                 pricing: LivePricing | None = None) -> None:
        self.config = config
        self.counters = Counters(started)
        self.displays = _displays(config)
        self.session_api = ApiWatch("session_cost", config.everest.base(),
                                    config.watchdog.heartbeat_timeout_s)
        self.watches = [self.session_api, *(d.watch for d in self.displays if d.watch)]
        self.inbox = Inbox(config, self.displays, self.session_api, self.counters)
        self._receivers: dict[str, Receiver] = {
            topic: self._payload_receiver(handler) for topic, handler in self.inbox.routes.items()}
        self.desk: MessageDesk | None = None
        if config.display_messages is not None:
            # Only when configured (the agent is then EVerest's display too): the
            # display_message API and its rules cost 0.18 MiB (bench/lazy_imports.py).
            from agent.core.messages import MessageDesk

            self.desk = MessageDesk(config, started)
            self.watches.append(self.desk.watch)
            for topic, name in self.desk.topics().items():
                self._receivers[topic] = self._request_receiver(name)
        self.pricing_desk: PricingDesk | None = None
        if pricing is not None:  # the shell imported the pricing (its one lazy-import point)
            self.pricing_desk = PricingDesk(pricing, self.displays)
        self.connected = False

    # ---- queries -----------------------------------------------------------------------

    @property
    def topics(self) -> tuple[str, ...]:
        """Every topic the station takes payloads from (the broker link subscribes to them)."""
        return tuple(self._receivers)

    @property
    def link_up(self) -> bool:
        """The station's EVerest link: the broker connection and the session cost API's beats."""
        return self.connected and self.session_api.ok

    def display(self, key: int | None) -> Display:
        """The display of EVSE `key` (None: the station's one display)."""
        return next(d for d in self.displays if d.key == key)

    def next_deadline(self, now: float, wall: float) -> float | None:
        """The monotonic time at which `tick()` will next change something, if any."""
        deadlines = [d for d in (*(p.model.next_deadline(p.state) for p in self.displays),
                                 *(w.deadline(self.connected) for w in self.watches),
                                 self.inbox.next_report_at(),
                                 self.desk.deadline(now, wall) if self.desk else None)
                     if d is not None]
        return min(deadlines) if deadlines else None

    # ---- inputs ------------------------------------------------------------------------

    def restore(self, snapshots: Mapping[int | None, Snapshot], boot_id: str,
                messages: bytes | None, now: float, wall: float) -> Effects:
        """Start from what the previous run saved (each display's snapshot, the display
        messages' file); every display's first view."""
        fx = Effects()
        hold = self.config.display.finished_hold_s
        for display in self.displays:
            snapshot = snapshots.get(display.key)
            if snapshot is not None:
                display.state = restored(display.model, display.state, snapshot, boot_id, now,
                                         wall, hold)
            if self.pricing_desk is not None:
                display.apply(self.pricing_desk.preview(display), now, fx)
        if self.desk is not None and messages is not None:
            self.desk.load(messages)
        self._show_messages(now, wall, fx)
        fx.saves.clear()  # nothing changed that the files do not hold already
        for display in self.displays:
            display.publish(wall, fx)
        fx.wake = True
        return fx

    def receive(self, topic: str, payload: bytes, now: float, wall: float) -> Effects:
        """One payload from the broker (a topic the station does not take changes nothing)."""
        fx = Effects()
        receiver = self._receivers.get(topic)
        if receiver is not None:
            receiver(payload, now, wall, fx)
        return fx

    def connection(self, up: bool, now: float, wall: float) -> Effects:
        """The broker connection came (`up`) or went."""
        fx = Effects()
        self.connected = up
        if up:
            for watch in self.watches:
                watch.connected(now)
        self._link_changed(now, wall, fx)
        fx.wake = True
        return fx

    def tick(self, now: float, wall: float) -> Effects:
        """Time passed: heartbeats may be overdue, holds and waits may end."""
        fx = Effects()
        for watch in self.watches:
            if watch.expire(now, self.connected):
                log.warning("no %s heartbeat for %.1f s: EVerest link down", watch.name,
                            watch.timeout_s)
                self._link_changed(now, wall, fx)
        self.inbox.report_unassigned(now)
        for display in self.displays:
            display.apply(Tick(), now, fx)
        self._show_messages(now, wall, fx)
        self._publish(wall, fx)
        fx.wake = True
        return fx

    def rate_fetched(self, keys: list[int | None], now: float, wall: float) -> Effects:
        """The pricing API answered the FetchRate for `keys` (the Rate is in the pricing)."""
        fx = Effects()
        if self.pricing_desk is not None and self.pricing_desk.rate_fetched(keys, now, fx):
            fx.wake = True
            self._show_messages(now, wall, fx)
            self._publish(wall, fx)
        return fx

    def communication_checks(self, alive: bool = True) -> list[tuple[ApiWatch, bytes]]:
        """One communication check per API module, to publish on its `check_topic` (`alive`
        False: the stop's goodbye); the shell counts in `checks_sent` those that went out."""
        payload = check_payload(alive)
        return [(watch, payload) for watch in self.watches]

    # ---- the rules ---------------------------------------------------------------------

    def deliver(self, deliveries: list[Delivery], now: float, wall: float) -> Effects:
        """Apply what the inbox decided a decoded message means, where it said (in order)."""
        fx = Effects()
        self._deliver(deliveries, now, wall, fx)
        return fx

    def _payload_receiver(self, handler: Callable[[bytes, float, float], list[Delivery]]
                          ) -> Receiver:
        def receive(payload: bytes, now: float, wall: float, fx: Effects) -> None:
            self._deliver(handler(payload, now, wall), now, wall, fx)
        return receive

    def _deliver(self, deliveries: list[Delivery], now: float, wall: float,
                 fx: Effects) -> None:
        changed = False
        for target, item in deliveries:
            if isinstance(target, ApiWatch):
                assert isinstance(item, int)
                self._heartbeat(target, item, now, wall, fx)
            elif self.pricing_desk is not None and isinstance(
                    item, SessionCost | TariffMessage | DefaultPrice):
                changed |= self.pricing_desk.deliver(target, item, now, fx)
            else:
                assert not isinstance(item, int)
                changed |= target.apply(item, now, fx)
        if changed:
            fx.wake = True  # a change may move the next deadline
            self._show_messages(now, wall, fx)
        self._publish(wall, fx)

    def _request_receiver(self, name: str) -> Receiver:
        def receive(payload: bytes, now: float, wall: float, fx: Effects) -> None:
            desk = self.desk
            assert desk is not None
            if name == "heartbeat":
                beat = desk.heartbeat(payload, now, wall)
                if beat is not None:
                    self._heartbeat(desk.watch, beat, now, wall, fx)
                self._publish(wall, fx)
                return
            reply = desk.request(name, payload, now, wall, desk.sessions(self.displays))
            if reply is not None:
                fx.publish.append(reply)
            self._show_messages(now, wall, fx)
            self._publish(wall, fx)
        return receive

    def _show_messages(self, now: float, wall: float, fx: Effects) -> None:
        """Give each display the backend message it shows now (the desk decides)."""
        if self.desk is None:
            return
        if self.desk.show(self.displays, now, wall, fx):
            fx.wake = True
        fx.board = self.desk.take_changed() or fx.board

    def _publish(self, wall: float, fx: Effects) -> None:
        """The new view of each display whose state changed (if its content changed)."""
        if not fx.saves:
            return
        changed = {key for key, _ in fx.saves}
        for display in self.displays:
            if display.key in changed:
                display.publish(wall, fx)

    def _heartbeat(self, watch: ApiWatch, beat: int, now: float, wall: float,
                   fx: Effects) -> None:
        verdict, back = watch.beat(beat, now)
        if verdict == "restart":
            log.warning("EVerest restarted (%s heartbeat id went back to %d)", watch.name, beat)
        if back:
            log.info("%s heartbeat back (id %d)", watch.name, beat)
            self._link_changed(now, wall, fx)
            fx.wake = True
        # Otherwise the beat only moved the deadline later: the shell's clock re-reads it when
        # the old one comes. Waking it on every beat was half the CPU a heartbeat costs.

    def _link_changed(self, now: float, wall: float, fx: Effects) -> None:
        up = self.link_up
        fx.link = up
        for display in self.displays:
            # A display's link (the station's and its EVSE's heartbeats) is decided here only
            # and held by its display state: everything else asks `display.state.link_up`.
            display_up = up and (display.watch is None or display.watch.ok)
            if display_up != display.state.link_up:
                log.info("EVerest link %s%s", "up" if display_up else "down",
                         f" ({display.name})" if display.key is not None else "")
            display.apply(LinkChanged(up=display_up), now, fx)
        self._show_messages(now, wall, fx)
        self._publish(wall, fx)

    # ---- the status file ---------------------------------------------------------------

    def status(self, now: float, wall: float) -> dict[str, object]:
        """The core's part of the status file (the shell adds the broker, outputs, threads)."""
        first = self.displays[0]
        evses = {}
        for display in self.displays:
            if display.evse is None or display.watch is None or display.counters is None:
                continue
            evses[str(display.key)] = display.counters.snapshot(
                now, wall, display.watch, module_id=display.evse.module_id,
                link="up" if display.state.link_up else "down",
                screen=display.view.screen if display.view else None,
                session_id=_session_id(display), late_session_costs=display.state.late_results)
        # One display: its screen and session at the top. With [[evse]] there is no station-wide
        # screen or session: each EVSE's are under `evse` (the top level would be EVSE 1's).
        single = {} if evses else {"screen": first.view.screen if first.view else None,
                                   "session_id": _session_id(first)}
        return self.counters.snapshot(
            now, wall, self.session_api, link="up" if self.link_up else "down", **single,
            pricing=(self.pricing_desk.pricing.stats() if self.pricing_desk is not None
                     else None),
            late_session_costs=sum(d.state.late_results for d in self.displays),
            evse=evses or None,
            display_messages=(self.desk.status(now, wall, self.connected)
                              if self.desk is not None else None))


def _session_id(display: Display) -> str | None:
    """The id of the session on screen: EVerest's session uuid, else the session_cost's id."""
    state = display.state
    if state.evse_session is not None:
        return state.evse_session
    return state.session.session_id if state.session is not None else None


def _displays(config: Config) -> list[Display]:
    """One display per [[evse]], or one for the whole station."""
    if not config.evse:
        return [Display(DisplayModel(config.display))]
    displays = []
    for evse in config.evse:
        watch = ApiWatch(f"evse {evse.id}", evse.base(config.everest.topic_prefix),
                         config.watchdog.heartbeat_timeout_s)
        template = evse.payment_url or config.display.payment_url
        displays.append(Display(DisplayModel(config.display, evse.id, template), evse, watch))
    return displays
