"""Local pricing inside the running agent: the current Rate, preview, estimate, cross-check."""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from agent.everest.session_cost import SessionCost
from agent.model.state import DisplayConfig
from agent.model.view import Estimate
from agent.pricing.client import PricingClient
from agent.pricing.preview import backend_total, estimate, preview_lines
from agent.pricing.settings import PricingConfig
from agent.pricing.structure import Rate, StructureError

log = logging.getLogger(__name__)


class _Bound(msgspec.Struct, frozen=True):
    """A driver's Rate on one EVSE: for the session that authorization started (once known)."""

    rate: Rate
    session_id: str | None = None


class LivePricing:
    """The station's Rate and each EVSE's session Rate, as display lines; counts mismatches.

    The pricing API answers an authorization with that driver's Rate: it belongs to the EVSEs
    the authorization tariff went to, and there binds to the first session whose cost arrives;
    it ends with that session. Everything else is priced with the station's Rate
    (`structure_file`). `key` is the EVSE's id (None for a display of the whole station).
    """

    def __init__(self, config: PricingConfig, display: DisplayConfig) -> None:
        self.config = config
        self.client = PricingClient(config)
        self.default: Rate | None = self.client.default_rate
        self._bound: dict[int | None, _Bound] = {}
        self._code = display.currency or None
        self._fmt = display.money
        self.mismatches = 0
        self.estimate_errors = 0
        self._warned: set[str] = set()

    def rate_for(self, key: int | None, session_id: str | None = None) -> Rate | None:
        """The Rate that prices `session_id` (or the next session) on EVSE `key`."""
        bound = self._bound.get(key)
        if bound is not None and bound.session_id in (None, session_id):
            return bound.rate
        return self.default

    def preview(self, key: int | None = None, session_id: str | None = None) -> tuple[str, ...]:
        """Preview lines for EVSE `key`'s price and tariff screens (empty without a Rate)."""
        rate = self.rate_for(key, session_id)
        if rate is None:
            return ()
        try:
            return preview_lines(rate, self.config.example_kwh, self._code, self._fmt)
        except (StructureError, ValueError, ArithmeticError) as exc:
            log.warning("pricing preview failed: %s", exc)
            return ()

    async def authorize(self, tag_id: str, evse_id: str, keys: list[int | None]) -> bool:
        """Fetch a driver's Rate (at `evse_id`) for the EVSEs `keys`; True when one arrived."""
        if not self.config.api_url:
            return False
        rate = await self.client.fetch(tag_id, evse_id)
        if rate is None:
            return False
        for key in keys:
            self._bound[key] = _Bound(rate)
        return True

    def estimate(self, msg: SessionCost, key: int | None = None) -> Estimate | None:
        """The local estimate for this session_cost on EVSE `key`, cross-checked against the
        backend total."""
        bound = self._bound.get(key)
        if bound is not None and bound.session_id is None:
            self._bound[key] = _Bound(bound.rate, msg.session_id)  # the authorized session
        elif bound is not None and bound.session_id != msg.session_id:
            del self._bound[key]  # that driver's session is over: the station's Rate again
        rate = self.rate_for(key, msg.session_id)
        if rate is None:
            return None
        try:
            result = estimate(rate, msg, self._code, self._fmt)
        except (StructureError, ValueError, ArithmeticError) as exc:
            self.estimate_errors += 1
            log.warning("pricing estimate failed for session %s: %s", msg.session_id, exc)
            return None
        if result is None:
            return None
        shown, breakdown = result
        charged = backend_total(msg, self._code)
        difference = abs(charged - breakdown.cost_total)
        if difference > self.config.tolerance and msg.session_id not in self._warned:
            # Once per session: a wrong tariff shows on the first session, not on the invoice.
            if len(self._warned) > 256:
                self._warned.clear()
            self._warned.add(msg.session_id)
            self.mismatches += 1
            log.warning("session %s: backend total %s differs from local estimate %s by %s "
                        "(tolerance %s): check the tariff configuration", msg.session_id,
                        charged, shown.value, difference, self.config.tolerance)
        return shown

    def stats(self) -> dict[str, Any]:
        """Status-file section (never contains the API token)."""
        doc = self.client.stats_dict()
        doc.update(rate_loaded=self.default is not None, session_rates=len(self._bound),
                   mismatches=self.mismatches, estimate_errors=self.estimate_errors)
        return doc
