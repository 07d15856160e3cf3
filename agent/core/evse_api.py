"""The EVSE manager API in the station core (only with `[[evse]]`): its topics and decoder, the
router of the station-wide session costs, and where each decoded message goes.

The [[evse]] feature's one lazy-import point in the core (the inbox takes it when the station
has an EVSE): with the model's part (agent.model.evse) it costs a board without `[[evse]]`
0.26 MiB of RSS (bench/lazy_imports.py, board venv).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from agent.core.display import Delivery, Display
from agent.everest.evse_manager import (
    EVSE_TOPICS,
    EvseId,
    MeterPublicKey,
    SessionEvent,
    SessionInfo,
    decode_evse,
)
from agent.everest.session_cost import Heartbeat
from agent.model.routing import EvseSessions, Router
from agent.model.state import SessionMoved


class EvseApi:
    """The EVSE modules' topics, decoder and router, for the inbox."""

    topics: tuple[str, ...] = EVSE_TOPICS
    decode: Callable[[str, bytes], object] = staticmethod(decode_evse)

    def __init__(self, module_ids: Sequence[str], sessions: EvseSessions) -> None:
        self.router = Router(module_ids, sessions)

    def deliveries(self, display: Display, msg: object,
                   by_module: Mapping[str, Display]) -> list[Delivery]:
        """Where a decoded message of `display`'s EVSE manager API goes (the router learns
        from it first: it asks the display states, which the deliveries then change)."""
        assert display.evse is not None and display.watch is not None
        module, watch, router = display.evse.module_id, display.watch, self.router
        match msg:
            case Heartbeat():
                return [(watch, msg.id)]
            case SessionEvent():
                held = router.event(module, msg)
                moved: list[Delivery] = [
                    (by_module[m], SessionMoved(sid))
                    for m, sid in router.take_corrections()]
                waited: list[Delivery] = [(display, late) for late in held]
                if msg.event in ("TransactionFinished", "SessionFinished"):
                    # what waited for the session's name came before its end
                    return [*moved, *waited, (display, msg)]
                return [*moved, (display, msg), *waited]
            case SessionInfo():
                router.info(module, msg)
                return [(display, msg)]
            case EvseId() | MeterPublicKey():
                return [(display, msg)]
            case _:
                return []
