"""The display's state, its configuration and the events it takes (besides EVerest's messages).

Apart from the state machine (agent.model.display) and the renderer (agent.model.render), so
that both read them without importing each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Final, TypeAlias

import msgspec
from msgspec import Meta

from agent.everest.session_cost import DefaultPrice, MessageContent, SessionCost, TariffMessage
from agent.model.money import MoneyFormat
from agent.model.payment import template_error
from agent.model.view import Estimate, ShownMessage, SignedMeter
from agent.structs import Record, Settings

if TYPE_CHECKING:
    # Only with [[evse]] (agent.model.evse, 0.26 MiB): a board without one does not carry the
    # EVSE manager API's messages or the Fraction arithmetic of the live cost.
    from agent.everest.evse_manager import EvseId, MeterPublicKey, SessionEvent, SessionInfo
    from agent.model.livecost import LiveBase


class DisplayConfig(Settings, kw_only=True):
    """`[display]`: language preference, fallback currency, hold times, money format."""

    languages: list[str] = msgspec.field(default_factory=lambda: ["en"])
    currency: Annotated[str, Meta(pattern="^([A-Z]{3})?$")] = "EUR"
    tariff_hold_s: Annotated[float, Meta(ge=0)] = 60.0
    finished_hold_s: Annotated[float, Meta(ge=0)] = 120.0
    # A Running/Idle session that hears nothing this long ends without a final cost (0: never).
    session_timeout_s: Annotated[float, Meta(ge=0)] = 0.0
    # [[evse]]: after TransactionFinished, how long to wait for the Finished session_cost.
    final_cost_wait_s: Annotated[float, Meta(ge=0)] = 60.0
    # [[evse]]: the running total extrapolated from live energy between backend updates.
    live_estimate: bool = True
    estimate_prefix: str = "≈ "
    money: MoneyFormat = msgspec.field(default_factory=MoneyFormat)
    # Without [[evse]]: the station's ad-hoc payment URL template (agent.model.payment).
    payment_url: str = ""
    # Eichrecht: on the finished screen, the transaction's signed end record as a QR code for
    # the transparency software (the view's `transparency_qr`).
    transparency_qr: bool = False

    def __post_init__(self) -> None:
        """Reject a payment URL template the display could not fill."""
        problem = template_error(self.payment_url)
        if problem:
            raise ValueError(f"payment_url: {problem}")


class LinkChanged(Record):
    """The runtime's verdict on the EVerest link (broker connection and heartbeats)."""

    up: bool


class Tick(Record):
    """Time passed: hold timers may expire."""


class PricingChanged(Record):
    """New local pricing output: preview lines for idle screens, estimate for the session."""

    preview: tuple[str, ...] = ()
    estimate: Estimate | None = None


class SessionMoved(Record):
    """A session's costs came here by a guess (its start was missed) that a later event proved
    wrong: it runs on another EVSE, and this display shows nothing of it any more."""

    session_id: str


class MessageShown(Record):
    """The backend's display message this display shows now (None: its own screen)."""

    message: ShownMessage | None


# A string alias: the EVSE API's message classes are imported only with [[evse]] (0.26 MiB
# with the live cost: agent.model.evse).
Event: TypeAlias = ("DefaultPrice | TariffMessage | SessionCost | LinkChanged | Tick"
                    " | PricingChanged | SessionMoved | MessageShown | SessionEvent"
                    " | SessionInfo | EvseId | MeterPublicKey")


class State(Record):
    """Everything the display shows derives from this."""

    link_up: bool = False
    default_price: DefaultPrice | None = None
    # An authorization tariff on screen until `tariff_until` (over a running session too).
    tariff: TariffMessage | None = None
    tariff_until: float | None = None
    session: SessionCost | None = None
    # Newest text for the session: from its session_cost or from a later tariff_message.
    session_text: list[MessageContent] | None = None
    energy_wh: int | None = None
    # Monotonic time of the newest message that named the session (for session_timeout_s).
    session_seen: float | None = None
    # The session ended at this monotonic time: the finished screen is held from here.
    ended_at: float | None = None
    # The end came as a Finished session_cost (False: final cost not received).
    final: bool = False
    # Messages of another session than the EVSE's own that arrived while it runs (late news).
    late_results: int = 0
    # A session-bound tariff (SessionId/TransactionId) that came before its session's first
    # cost: (the ids it names, its text), kept for that session.
    pending_text: tuple[tuple[str, ...], list[MessageContent]] | None = None
    preview: tuple[str, ...] = ()
    estimate: Estimate | None = None
    # ---- from the EVSE manager API ([[evse]]) ----
    evse_id: str | None = None
    # The billing meter's OCMF public key (Eichrecht transparency), as EVerest published it.
    meter_public_key: str | None = None
    # The signed meter values of session `signed_session` (its transaction's start and end).
    signed_session: str | None = None
    signed: SignedMeter | None = None
    # EVerest's uuid of the session running on the EVSE (SessionStarted..SessionFinished),
    # the token that authorized it as a salted hash (never the token: compared, not kept),
    # and whether it waits for a driver to authorize (plugged in first, no token yet).
    evse_session: str | None = None
    session_token: int | None = None
    awaiting_authorization: bool = False
    # Newest session_info of that session, when it came, and since when the EVSE is idle;
    # `live_on`: it says a session is on (EVerest's session states).
    live: SessionInfo | None = None
    live_on: bool = False
    live_at: float | None = None
    idle_since: float | None = None
    # The newest session_cost's total and prices with the live energy when it arrived.
    live_base: LiveBase | None = None
    # The transaction finished: the Finished session_cost is awaited until then.
    final_wait_until: float | None = None
    # ---- from the display_message API ([display_messages]) ----
    display_message: ShownMessage | None = None
    # Without [[evse]], after a restart: the session that was running when the agent stopped
    # (same boot), which its display messages stay bound to until its next cost names it
    # again, or until `restored_until` passes with no cost at all.
    restored_session: str | None = None
    restored_until: float | None = None

    @property
    def running(self) -> bool:
        """A session is on and has not ended (status Running or Idle)."""
        return self.session is not None and self.ended_at is None

    @property
    def unnamed_session(self) -> bool:
        """The EVSE's session_info says a session is on, but no event named it (missed)."""
        return self.evse_session is None and self.live_on

    def signed_for(self, session_id: str) -> SignedMeter | None:
        """The signed meter values of `session_id`, if the state holds them."""
        return self.signed if self.signed_session == session_id else None

    def evse_runs(self, session_id: str) -> bool:
        """`session_id` is (or may be, its start unseen) the session on the EVSE right now."""
        return self.evse_session == session_id or self.unnamed_session


# What ending a session (receipt gone, new authorization) and leaving the EVSE's session reset.
NO_SESSION: Final[dict[str, object]] = {
    "session": None, "session_text": None, "energy_wh": None, "session_seen": None,
    "ended_at": None, "final": False, "estimate": None, "live_base": None,
    "final_wait_until": None, "pending_text": None, "signed_session": None, "signed": None}
NO_LIVE: Final[dict[str, object]] = {"live": None, "live_on": False, "live_at": None,
                                     "idle_since": None, "live_base": None}
# What the end of the session on the EVSE resets (its SessionFinished, or the car unplugged).
NO_EVSE_SESSION: Final[dict[str, object]] = {"evse_session": None, "session_token": None,
                                             "awaiting_authorization": False}
