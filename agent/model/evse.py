"""The display rules of EVerest's EVSE manager API (only with `[[evse]]`): session events and
session_info on one EVSE's display, the transaction's signed meter values, the live cost's base.

The [[evse]] feature's one lazy-import point in the model (DisplayModel takes it when it has an
EVSE): with the EVSE manager API's messages and the live cost's Fraction arithmetic it costs a
board without `[[evse]]` 0.26 MiB of RSS (bench/lazy_imports.py, board venv).
"""

from __future__ import annotations

from fractions import Fraction
from typing import assert_never

import msgspec

from agent.everest.evse_manager import (
    OUTSIDE_SESSION,
    SESSION_STATES,
    EvseId,
    MeterPublicKey,
    SessionEvent,
    SessionInfo,
)
from agent.everest.session_cost import SessionCost
from agent.model.livecost import LiveBase, live_total, phase_of, track_idle_since
from agent.model.routing import token_key
from agent.model.state import NO_EVSE_SESSION, NO_LIVE, NO_SESSION, DisplayConfig, State
from agent.model.view import SignedMeter

EvseEvent = SessionEvent | SessionInfo | EvseId | MeterPublicKey


class EvseRules:
    """What the EVSE manager API's messages do to one EVSE's display state."""

    def __init__(self, config: DisplayConfig, fallback_code: str | None) -> None:
        self.config = config
        self._fallback_code = fallback_code

    def update(self, state: State, event: EvseEvent, now: float) -> State:
        """The state after `event` at monotonic time `now`."""
        match event:
            case SessionEvent():
                return self._session_event(state, event, now)
            case SessionInfo():
                return self._session_info(state, event, now)
            case EvseId():
                if state.evse_id == event.value:
                    return state
                return msgspec.structs.replace(state, evse_id=event.value)
            case MeterPublicKey():
                if state.meter_public_key == event.value:
                    return state
                return msgspec.structs.replace(state, meter_public_key=event.value)
            case _:
                assert_never(event)

    def base(self, state: State, msg: SessionCost, now: float) -> LiveBase | None:
        """Each session_cost restarts the extrapolation from its own total, here and now."""
        if state.live is None or not state.evse_runs(msg.session_id):
            return None
        return LiveBase.from_session_cost(msg, state.live.charged_energy_wh, now,
                                          self._fallback_code)

    @staticmethod
    def live_amount(state: State) -> Fraction | None:
        """The running total extrapolated from live energy since the newest cost (exact)."""
        base, info, at = state.live_base, state.live, state.live_at
        if base is None or info is None or at is None:
            return None
        return live_total(base, info.charged_energy_wh, at, phase_of(info.state),
                          state.idle_since)

    def _session_event(self, state: State, event: SessionEvent, now: float) -> State:
        replace = msgspec.structs.replace
        if event.event in OUTSIDE_SESSION or not event.uuid:
            return state
        if event.event == "SessionFinished":  # the car is gone: live values end
            if state.evse_session not in (event.uuid, None):
                return replace(state, late_results=state.late_results + 1)  # an older session's
            if state.unnamed_session:
                # A session no event named is on (session_info says so): this may be its end or
                # an older session's, late. The next session_info tells whether one is still on;
                # a session this names that is on screen awaits its final cost.
                return self._await_final(state, event.uuid, now)
            state = replace(state, **NO_EVSE_SESSION, **NO_LIVE)
            return self._await_final(state, event.uuid, now)
        if event.uuid != state.evse_session:
            session = state.session
            if session is not None and session.session_id != event.uuid and (
                    state.ended_at is not None or not state.unnamed_session):
                # A new session on this EVSE: the previous one's receipt (or, when the costs
                # went here by a guess, that session) leaves the screen.
                state = replace(state, **NO_SESSION)
            live = NO_LIVE if not state.unnamed_session else {}
            # A new session: the old token is gone; it waits for a driver until one authorizes.
            state = replace(state, evse_session=event.uuid, session_token=None,
                            awaiting_authorization=True, **live)
        token = event.token
        if token is not None:
            state = replace(state, session_token=token_key(token.value))
        if state.awaiting_authorization and (token is not None
                                             or event.event == "TransactionStarted"):
            state = replace(state, awaiting_authorization=False)
        state = _with_signed(state, event)
        state = self._seen(state, now)
        if event.event == "TransactionFinished":
            state = self._await_final(state, event.uuid, now)
        return state

    def _await_final(self, state: State, uuid: str, now: float) -> State:
        """EVerest ended the session: the Finished session_cost may still come, or never."""
        session = state.session
        if (session is None or not state.running or session.session_id != uuid
                or state.final_wait_until is not None):
            return state
        return msgspec.structs.replace(state, final_wait_until=now + self.config.final_cost_wait_s)

    def _session_info(self, state: State, info: SessionInfo, now: float) -> State:
        on = info.state in SESSION_STATES
        if state.evse_session is None and not on:
            if state.live is None:
                return state
            session = state.session
            ended = msgspec.structs.replace(state, **NO_LIVE)
            if session is not None and state.unnamed_session:
                # An unnamed session (its start was missed) is over: await its final cost.
                return self._await_final(ended, session.session_id, now)
            return ended
        if info.state == "Unplugged":  # the car is gone: its SessionFinished was missed
            uuid = state.evse_session
            assert uuid is not None
            state = msgspec.structs.replace(state, **NO_EVSE_SESSION, **NO_LIVE)
            return self._await_final(state, uuid, now)
        base = state.live_base
        session = state.session
        if base is None and session is not None and state.running and (
                session.session_id == state.evse_session or state.evse_session is None):
            base = LiveBase.from_session_cost(session, info.charged_energy_wh, now,
                                              self._fallback_code)
        return self._seen(msgspec.structs.replace(
            state, live=info, live_on=on, live_at=now, live_base=base,
            idle_since=track_idle_since(state.idle_since, info.state, now)), now)

    @staticmethod
    def _seen(state: State, now: float) -> State:
        """EVerest's EVSE API reports the running session: it is alive (session_timeout_s)."""
        session = state.session
        if state.running and session is not None and state.evse_runs(session.session_id):
            return msgspec.structs.replace(state, session_seen=now)
        return state


def _with_signed(state: State, event: SessionEvent) -> State:
    """Keep the transaction's signed meter values (Eichrecht) that `event` carries, as published."""
    start, end = event.signed
    if start is None and end is None:
        return state
    old = state.signed_for(event.uuid)
    if old is not None:
        start = start if start is not None else old.start
        end = end if end is not None else old.end
    return msgspec.structs.replace(state, signed_session=event.uuid,
                                   signed=SignedMeter(start=start, end=end))
