"""Local pricing inside the running agent: the current Rate, preview, estimate, cross-check."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from agent.everest.session_cost import SessionCost
from agent.model.display import DisplayConfig
from agent.model.view import Estimate
from agent.pricing.client import PricingClient
from agent.pricing.preview import backend_total, estimate, preview_lines
from agent.pricing.settings import PricingConfig
from agent.pricing.structure import Rate, StructureError

log = logging.getLogger(__name__)


class LivePricing:
    """Holds the Rate in force and turns it into display lines; counts backend mismatches."""

    def __init__(self, config: PricingConfig, state_dir: str, display: DisplayConfig) -> None:
        self.config = config
        self.client = PricingClient(config, Path(state_dir or "/nonexistent"))
        self.rate: Rate | None = self.client.last_good
        self._code = display.currency or None
        self._fmt = display.money
        self.mismatches = 0
        self.estimate_errors = 0
        self._warned: set[str] = set()

    def preview(self) -> tuple[str, ...]:
        """Preview lines for the price and tariff screens (empty without a Rate)."""
        if self.rate is None:
            return ()
        try:
            return preview_lines(self.rate, self.config.example_kwh, self._code, self._fmt)
        except (StructureError, ValueError, ArithmeticError) as exc:
            log.warning("pricing preview failed: %s", exc)
            return ()

    async def authorize(self, tag_id: str, evse_id: str = "") -> bool:
        """Fetch the Rate for a token (at `evse_id`); True when it changed the Rate in force."""
        if not self.config.api_url:
            return False
        rate = await self.client.fetch(tag_id, evse_id)
        if rate is None:
            return False
        self.rate = rate
        return True

    def estimate(self, msg: SessionCost) -> Estimate | None:
        """The local estimate for this session_cost, cross-checked against the backend total."""
        if self.rate is None:
            return None
        try:
            result = estimate(self.rate, msg, self._code, self._fmt)
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
        doc.update(rate_loaded=self.rate is not None, mismatches=self.mismatches,
                   estimate_errors=self.estimate_errors)
        return doc
