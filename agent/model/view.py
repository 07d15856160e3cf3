"""The display view: what every output receives, serialized as fixed-name JSON."""

from __future__ import annotations

from typing import Literal

import msgspec

from agent.structs import Record

Screen = Literal["price", "tariff", "charging", "idle", "finished", "unavailable"]
Status = Literal["Running", "Idle", "Finished"]


class Total(Record):
    """A money amount as sent (value at `decimals`) plus its display text."""

    value: int
    decimals: int
    currency: str | None
    text: str


class NextPeriod(Record):
    """Prices that apply from `from` (a timestamp string as EVerest sent it, may be empty)."""

    from_: str = msgspec.field(name="from")
    prices: list[str] = msgspec.field(default_factory=list)


class Estimate(Record):
    """The agent's own cost estimate from a local price structure (decimal string)."""

    value: str
    currency: str | None
    text: str


class SignedMeter(Record):
    """Eichrecht: the transaction's signed meter values, each EVerest's `SignedMeterValue`
    object byte for byte as published (JSON embedded, never re-encoded), null until known."""

    start: msgspec.Raw | None = None
    end: msgspec.Raw | None = None


class Live(Record):
    """Live values of the EVSE's running session (EVerest's session_info)."""

    energy_wh: int
    power_w: int
    duration_s: int
    state: str


class LiveTotal(Record):
    """The backend's newest total extrapolated with the live meter (never replaces `total`)."""

    value: int
    decimals: int
    currency: str | None
    text: str
    estimated: bool = True


class ShownMessage(Record):
    """A backend's display message (OCPP SetDisplayMessage through EVerest) on screen now."""

    id: int
    text: str | None
    qr_code: str | None
    priority: Literal["AlwaysFront", "InFront", "NormalCycle"]


class View(Record):
    """Everything a display shows; equality ignores nothing, so compare with `same_content`."""

    screen: Screen
    link: Literal["up", "down"]
    session_id: str | None = None
    status: Status | None = None
    total: Total | None = None
    stale: bool = False
    # On the finished screen: true for a Finished session_cost, false when the session ended
    # without one ("final cost not received"); null on every other screen.
    final: bool | None = None
    energy_wh: int | None = None
    prices: list[str] = msgspec.field(default_factory=list)
    idle_price: str | None = None
    next_period: NextPeriod | None = None
    message: str | None = None
    language: str | None = None
    qr_code: str | None = None
    updated_at: str = ""
    # Local pricing (be.ENERGISED structure): preview lines before a session, estimate during it.
    preview: list[str] = msgspec.field(default_factory=list)
    estimate: Estimate | None = None
    # [[evse]]: the configured EVSE number, EVerest's EVSE id string, live values and total.
    evse: int | None = None
    evse_id: str | None = None
    live: Live | None = None
    live_total: LiveTotal | None = None
    # On the price screen: the connector's ad-hoc payment URL (AFIR), for a QR code.
    payment_url: str | None = None
    # [[evse]]: the billing meter's OCMF public key (Eichrecht), exactly as EVerest published it.
    meter_public_key: str | None = None
    # [[evse]]: the session's signed meter values (Eichrecht), with the session and its receipt.
    signed_meter: SignedMeter | None = None
    # [display_messages]: the backend's message on screen now (over or in turn with the screen).
    display_message: ShownMessage | None = None
    # display.transparency_qr: on the finished screen, the signed end record's
    # `signed_meter_data` (e.g. OCMF) for the transparency software's QR code.
    transparency_qr: str | None = None


class _SignedData(Record):
    signed_meter_data: str


def signed_data(record: msgspec.Raw) -> str:
    """The `signed_meter_data` of a SignedMeterValue kept as published (checked on arrival)."""
    return msgspec.json.decode(record, type=_SignedData).signed_meter_data


def same_content(a: View | None, b: View | None) -> bool:
    """True when two views show the same thing (the update stamp is ignored)."""
    if a is None or b is None:
        return a is b
    return msgspec.structs.replace(a, updated_at="") == msgspec.structs.replace(b, updated_at="")


_encoder = msgspec.json.Encoder()


def encode_view(view: View) -> bytes:
    """The view as compact JSON bytes."""
    return _encoder.encode(view)


def energy_kwh_text(view: View) -> str:
    """Energy as `12.345 kWh`, or an empty string when unknown."""
    if view.energy_wh is None:
        return ""
    whole, frac = divmod(view.energy_wh, 1000)
    return f"{whole}.{frac:03d} kWh"


def power_kw_text(view: View) -> str:
    """Live power as `7.4 kW` (tenths, half up), or an empty string outside a session."""
    if view.live is None:
        return ""
    watts = view.live.power_w
    tenths = (abs(watts) + 50) // 100
    sign = "-" if watts < 0 and tenths else ""
    return f"{sign}{tenths // 10}.{tenths % 10} kW"


def duration_text(view: View) -> str:
    """The session's duration as `1:05:09`, or an empty string outside a session."""
    if view.live is None:
        return ""
    minutes, seconds = divmod(view.live.duration_s, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"
