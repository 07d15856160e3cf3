"""`web` output: the station's kiosk display, served by the agent on its own event loop.

One web output serves every display of the station: `/` shows them side by side, `/evse/{id}`
one EVSE full screen, `/events` streams the views (Server-Sent Events), `/views.json` has the
current ones. HTTP is h11's (no framework) and the QR codes are segno's SVG: both are imported
only when a web output is configured (`pip install 'cost-agent[web]'`). docs/outputs.md tells
the safety rules (loopback by default, GET and HEAD only, Host checked, bounded requests).
"""

from __future__ import annotations

from agent.outputs.base import OutputConfig, StationOutput, Unusable
from agent.outputs.web.config import WebConfig

CONFIG = WebConfig


def preflight(config: OutputConfig) -> None:
    """h11 and segno are installed, and the files the output names are usable."""
    from agent.outputs.qrmatrix import encoder

    try:
        import h11  # noqa: F401

        encoder()  # segno's, without the rest of segno (see qrmatrix)
    except ImportError as exc:
        raise Unusable("type", f"web needs {exc.name} (pip install 'cost-agent[web]')"
                       ) from None
    from agent.outputs.web.feed import Feed
    from agent.outputs.web.site import Site, SiteError

    assert isinstance(config, WebConfig)
    try:
        Site.load(config, Feed())
    except SiteError as exc:
        key, _, problem = str(exc).partition(": ")
        raise Unusable(key, problem) from None


def create(config: OutputConfig) -> StationOutput:
    """Build the output from its validated table (h11 and segno are imported here)."""
    from agent.outputs.web.server import WebOutput

    assert isinstance(config, WebConfig)
    return WebOutput(config)
