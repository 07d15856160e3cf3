"""The `[pricing]` config section.

`tolerance` is an absolute amount in the tariff's currency (major units, e.g.
"0.05" = 5 cent): when the backend's session cost and the agent's own estimate
differ by more than this, the runtime flags the mismatch. Write it as a string
in TOML ("0.05") so it stays an exact Decimal; a TOML float is accepted and
taken at its shortest decimal representation.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from msgspec import Meta

from agent.structs import Settings


class PricingConfig(Settings, kw_only=True):
    """Where the tariff comes from: a local Rate file and/or the be.ENERGISED API."""

    structure_file: str = ""
    api_url: str = ""
    evse_id: str = ""
    token_file: str = ""
    timeout_s: Annotated[float, Meta(gt=0, le=120)] = 5.0
    example_kwh: Annotated[int, Meta(ge=1, le=1000)] = 20
    tolerance: Decimal = Decimal("0.01")

    def __post_init__(self) -> None:
        """Reject settings the agent could only fail on later (what msgspec's constraints
        cannot say: an exact amount, a URL)."""
        if not self.tolerance.is_finite() or self.tolerance < 0:
            raise ValueError(f"tolerance: must be a finite amount >= 0, got {self.tolerance}")
        if self.api_url:
            # Here, not at the top: urllib.parse imports ipaddress (0.48 MiB of RSS on a board,
            # bench/lazy_imports.py), which a station without the pricing API never needs.
            from urllib.parse import urlsplit

            parts = urlsplit(self.api_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"api_url: must be an http(s) URL with a host, got "
                                 f"{self.api_url!r}")
            if parts.username or parts.password:
                # Credentials in the URL would end up in logs; the token file is the place.
                raise ValueError("api_url: must not contain credentials; use token_file")
            if not self.token_file:
                raise ValueError("token_file: required when api_url is set")

    @property
    def enabled(self) -> bool:
        """True when any tariff source is configured."""
        return bool(self.structure_file or self.api_url)
