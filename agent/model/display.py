"""The display model: a pure state machine from decoded messages, link changes and ticks to a view.

Time is the monotonic clock passed in by the caller; nothing here reads a clock or does I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from msgspec import UNSET

from agent.everest.session_cost import DefaultPrice, MessageContent, SessionCost, TariffMessage
from agent.model.render import Renderer
from agent.model.state import (
    NO_SESSION,
    DisplayConfig,
    Event,
    LinkChanged,
    MessageShown,
    PricingChanged,
    SessionMoved,
    State,
    Tick,
)
from agent.model.view import Screen, SignedMeter, View, signed_data

if TYPE_CHECKING:
    from fractions import Fraction

    from agent.model.evse import EvseRules

_STATUS_SCREEN: dict[str, Screen] = {"Running": "charging", "Idle": "idle",
                                     "Finished": "finished"}


def _energy(msg: SessionCost, previous: int | None) -> int | None:
    chunks = msg.cost_chunks
    if chunks is not UNSET:
        # The newest chunk that is not null (EVerest writes a chunk with no member as null).
        last = next((c for c in reversed(chunks) if c is not None), None)
        if last is not None and last.metervalue_to is not UNSET and last.metervalue_to > 0:
            return last.metervalue_to
    # 0 or absent means the meter did not say; keep the last known reading of this session.
    return previous


class DisplayModel:
    """Applies events to State and renders Views, for one `[display]` and one EVSE (or none)."""

    def __init__(self, config: DisplayConfig, evse: int | None = None,
                 payment_url: str | None = None) -> None:
        self.config = config
        self.evse = evse
        self._fallback_code = config.currency or None
        template = config.payment_url if payment_url is None else payment_url
        self._renderer = Renderer(config, evse, template, self._live_amount)
        self._evse_rules: EvseRules | None = None

    def _evse(self) -> EvseRules:
        """The EVSE manager API's rules, on its first message (only ever with [[evse]])."""
        if self._evse_rules is None:
            # The [[evse]] feature's one lazy-import point (0.26 MiB: agent.model.evse).
            from agent.model.evse import EvseRules

            self._evse_rules = EvseRules(self.config, self._fallback_code)
        return self._evse_rules

    def _live_amount(self, state: State) -> Fraction | None:
        """The live running total (only a state with EVerest's live values has one)."""
        return self._evse().live_amount(state) if state.live_base is not None else None

    # ---- transitions -------------------------------------------------------------------

    def update(self, state: State, event: Event, now: float) -> State:
        """The state after `event` at monotonic time `now`."""
        replace = msgspec.structs.replace
        match event:
            case SessionCost():
                return self._session_cost(state, event, now)
            case TariffMessage():
                return self._tariff(state, event, now)
            case DefaultPrice():
                return replace(state, default_price=event)
            case LinkChanged():
                return state if state.link_up == event.up else replace(state, link_up=event.up)
            case PricingChanged():
                return replace(state, preview=event.preview, estimate=event.estimate)
            case Tick():
                return self._expire(state, now)
            case MessageShown():
                if state.display_message == event.message:
                    return state
                return replace(state, display_message=event.message)
            case SessionMoved():
                session = state.session
                if session is None or session.session_id != event.session_id:
                    return state
                return replace(state, **NO_SESSION)
            case _:
                return self._evse().update(state, event, now)

    def _session_cost(self, state: State, msg: SessionCost, now: float) -> State:
        replace = msgspec.structs.replace
        same = state.session is not None and state.session.session_id == msg.session_id
        finished = msg.status == "Finished"
        if not same and finished and state.running and state.final_wait_until is None:
            # Late news of an older session: the running one stays on screen. (Not when the
            # EVSE's events ended the running one: this is the next session's final cost.)
            return replace(state, late_results=state.late_results + 1)
        if state.evse_session is not None and msg.session_id != state.evse_session:
            # EVerest's events say another session runs on this EVSE: news of an older one
            # (even with nothing on screen: the session that runs there owns the screen).
            return replace(state, late_results=state.late_results + 1)
        if same and state.final and not finished:
            # A final receipt is final; a Running/Idle behind it arrived out of order.
            return replace(state, late_results=state.late_results + 1)
        text = state.session_text if same else None
        pending = state.pending_text
        if not same and pending is not None and msg.session_id in pending[0]:
            text = pending[1]  # its tariff came first
        if msg.message is not UNSET and msg.message:
            text = msg.message
        ended_at = None
        if finished:
            # The hold counts from the (first) final cost, not from repeats of it.
            ended_at = state.ended_at if same and state.final else now
        # Another driver's tariff stays up while the running session is only updated.
        keep_tariff = same and state.running
        return replace(
            state, restored_session=None, restored_until=None, session=msg, session_text=text,
            tariff=state.tariff if keep_tariff else None,
            tariff_until=state.tariff_until if keep_tariff else None,
            energy_wh=_energy(msg, state.energy_wh if same else None), session_seen=now,
            ended_at=ended_at, final=finished, estimate=state.estimate if same else None,
            live_base=(self._evse().base(state, msg, now) if state.live is not None
                       else None),
            pending_text=None if not same else state.pending_text,
            final_wait_until=None if finished or not same else state.final_wait_until)

    def _tariff(self, state: State, msg: TariffMessage, now: float) -> State:
        replace = msgspec.structs.replace
        kind = msg.identifier_type
        if kind in {"SessionId", "TransactionId"}:
            session = state.session
            ids = tuple(i for i in (msg.identifier_id, msg.ocpp_transaction_id) if i is not UNSET)
            before_first_cost = session is None or (
                state.ended_at is not None and session.session_id not in ids)
            if before_first_cost and state.evse_session in (*ids, None):
                # Its session's first cost is yet to come: kept for it (routing sent it here).
                return replace(state, pending_text=(ids, msg.messages))
            if session is None or session.session_id not in ids:
                return state  # another session's text: nothing on this screen changes
            # The newest text for the session wins (e.g. an offline final cost message).
            seen = now if state.running else state.session_seen
            return replace(state, session_text=msg.messages, session_seen=seen)
        # IdToken, or no identifier at all (OCPP 1.6 SetUserPrice timeout fallback): a driver
        # just authorized, maybe at another EVSE. Shown for the hold over whatever is on screen
        # (a running session, a receipt); then that comes back. A receipt keeps its full hold:
        # only a new session on its own EVSE ends it early.
        return replace(state, tariff=msg, tariff_until=now + self.config.tariff_hold_s)

    def restore_session(self, state: State, session_id: str, now: float) -> State:
        """After a restart without [[evse]]: `session_id` ran when the agent stopped (same
        boot). Its display messages stay until its next cost, or `final_cost_wait_s` without
        any cost (then it is taken to have ended while the agent was down)."""
        return msgspec.structs.replace(state, restored_session=session_id,
                                       restored_until=now + self.config.final_cost_wait_s)

    def end_session(self, state: State, now: float) -> State:
        """The running session ended without a final cost: its receipt, `final` false."""
        if not state.running:
            return state
        return msgspec.structs.replace(state, ended_at=now, final=False, final_wait_until=None)

    def receipt(self, state: State, session: SessionCost, text: list[MessageContent] | None,
                final: bool, ended_at: float, signed: SignedMeter | None = None) -> State:
        """`state` showing a restored receipt that ended at monotonic time `ended_at`."""
        return msgspec.structs.replace(
            state, session=session, session_text=text, tariff=None, tariff_until=None,
            energy_wh=_energy(session, None), session_seen=ended_at, ended_at=ended_at,
            final=final, estimate=None, signed=signed,
            signed_session=session.session_id if signed is not None else None)

    def _expire(self, state: State, now: float) -> State:
        replace = msgspec.structs.replace
        if state.tariff_until is not None and now >= state.tariff_until:
            state = replace(state, tariff=None, tariff_until=None)
        if state.final_wait_until is not None and now >= state.final_wait_until:
            state = self.end_session(state, state.final_wait_until)
        timeout = self._timeout_at(state)
        if timeout is not None and now >= timeout:
            state = self.end_session(state, timeout)
        if state.ended_at is not None and now >= state.ended_at + self.config.finished_hold_s:
            state = replace(state, **NO_SESSION)
        if state.restored_until is not None and now >= state.restored_until:
            state = replace(state, restored_session=None, restored_until=None)
        return state

    def _timeout_at(self, state: State) -> float | None:
        limit = self.config.session_timeout_s
        if limit <= 0 or not state.running or state.session_seen is None:
            return None
        return state.session_seen + limit

    def next_deadline(self, state: State) -> float | None:
        """The monotonic time at which a Tick will change the state, if any."""
        finished_until = (None if state.ended_at is None
                          else state.ended_at + self.config.finished_hold_s)
        deadlines = [t for t in (state.tariff_until, finished_until, self._timeout_at(state),
                                 state.final_wait_until, state.restored_until) if t is not None]
        return min(deadlines) if deadlines else None

    # ---- rendering ---------------------------------------------------------------------

    def screen(self, state: State) -> Screen:
        """Which screen the state implies."""
        session = state.session
        if state.tariff is not None and state.link_up:
            return "tariff"  # for its hold, over a running session or a receipt
        if session is not None and state.ended_at is not None:
            return "finished"
        if not state.link_up:
            return "unavailable"
        if session is not None:
            return _STATUS_SCREEN[session.status]
        return "price"

    def view(self, state: State, updated_at: str = "") -> View:
        """The view for `state`; the caller stamps `updated_at` when the content changed."""
        view = self._renderer.view(state, self.screen(state), updated_at)
        if state.display_message is not None:
            view = msgspec.structs.replace(view, display_message=state.display_message)
        signed = view.signed_meter
        if (self.config.transparency_qr and view.screen == "finished" and signed is not None
                and signed.end is not None):
            view = msgspec.structs.replace(view, transparency_qr=signed_data(signed.end))
        return view
