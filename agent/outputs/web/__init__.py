"""`web` output: the station's kiosk display, served by the agent on its own event loop.

One web output serves every display of the station: `/` shows them side by side, `/evse/{id}`
one EVSE full screen, `/events` streams the views (Server-Sent Events), `/views.json` has the
current ones. HTTP is h11's (no framework) and the QR codes are segno's SVG: both are imported
only when a web output is configured (`pip install 'cost-agent[web]'`). docs/outputs.md tells
the safety rules (loopback by default, GET and HEAD only, Host checked, bounded requests).
"""

from __future__ import annotations

from agent.outputs.base import OutputConfig, StationOutput
from agent.outputs.web.config import WebConfig

CONFIG = WebConfig


def create(config: OutputConfig) -> StationOutput:
    """Build the output from its validated table (h11 and segno are imported here)."""
    from agent.outputs.web.server import WebOutput

    assert isinstance(config, WebConfig)
    return WebOutput(config)
