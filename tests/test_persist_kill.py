"""kill -9 while the snapshot is being saved, again and again: the state file is never torn,
and the next start removes what the killed writer left behind."""

from __future__ import annotations

import asyncio
import contextlib
import random
from pathlib import Path

from agent.core.snapshot import SNAPSHOT_NAME
from agent.dev.broker import Mosquitto
from agent.process.persist import load_snapshot
from tests.harness import Everest, agent_config, wait_until
from tests.procs import Agent

KILLS = 20
PAD = "x" * 2000  # a few kB per save: the kill often lands inside a write


def saved_text(state: Path) -> str | None:
    """The default price text of the saved snapshot; fails the test if the file is torn."""
    snapshot, problem = load_snapshot(str(state))
    assert problem is None, problem
    price = snapshot.default_price
    return price.messages[0].content if price is not None and price.messages else None


def temps(state: Path) -> set[str]:
    """Temp files of the snapshot writer in the state dir."""
    return {p.name for p in state.glob(f".{SNAPSHOT_NAME}.*.tmp")}


def test_sigkill_while_saving_never_tears_the_state_file(broker: Mosquitto,
                                                         tmp_path: Path) -> None:
    config = agent_config(tmp_path, broker.port, heartbeat_timeout_s=0)
    state = tmp_path / "state"
    rng = random.Random(7)
    left_behind = 0

    async def publish(everest: Everest) -> None:
        for i in range(10**9):
            everest.send("default_price", {"messages": [{"content": f"price {i} {PAD}"}]})
            await asyncio.sleep(0.002)

    async def scenario() -> None:
        nonlocal left_behind
        everest = await Everest(broker.port).connect()
        publisher = asyncio.create_task(publish(everest))
        agent: Agent | None = None
        try:
            for _ in range(KILLS):
                before = saved_text(state) if state.exists() else None
                stale = temps(state) if state.exists() else set()
                agent = await Agent(config, log_level=None).start()
                # Restored, connected and saving: the saved text moves on.
                await wait_until(lambda: saved_text(state) not in (None, before),  # noqa: B023
                                 timeout=20, what="the agent saving snapshots")
                assert not stale & temps(state), "the start left an old temp file behind"
                await asyncio.sleep(rng.uniform(0.0, 0.15))
                agent.sigkill()
                await agent.kill()
                text = saved_text(state)  # whole and decodable after every kill
                assert text is not None and text.startswith("price ") and text.endswith(PAD)
                left_behind += len(temps(state))
            publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publisher
            # A power cut's leftover, whatever the kills happened to leave.
            (state / f".{SNAPSHOT_NAME}.k1ll3d.tmp").write_bytes(b'{"default_pri')
            final = saved_text(state)
            agent = last = await Agent(config, log_level=None).start()
            # "running:" is logged once the saved state was restored (and the temps removed).
            await wait_until(lambda: last.log().count("running:") > KILLS, what="the last start")
            assert temps(state) == set()
            assert saved_text(state) == final
            assert (await last.timed_terminate())[0] == 0
        finally:
            publisher.cancel()
            if agent is not None:
                await agent.kill()
            await everest.close()
    asyncio.run(scenario())
    print(f"{KILLS} kills during saves; {left_behind} left a temp file behind")
