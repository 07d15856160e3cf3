"""What each of the agent's memory tricks saves (issue 26): RSS over the agent's run path.

Every trick (an import deferred to where a feature needs it, a module unloaded, segno's encoder
loaded without its package) is kept only where it saves at least 0.1 MiB on a board's install.
This measures each: the agent's run path (`agent.cli` and the runtime, as `cost-agent run`
imports them) is imported in a venv of what the image installs (bench/footprint.py
`board_python`), then what the trick avoids; the RSS difference is what the trick saves.
Medians of `--runs` processes each.

    .venv/bin/python bench/lazy_imports.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.footprint import _READY_SLEEP, board_python, idle_rss_kb

# The agent's run path: what `cost-agent run` has imported once it runs (no optional feature).
RUN_PATH = ("import asyncio, msgspec, gmqtt, agent.cli, agent.process.runtime, "
            "agent.core.station, agent.outputs.file")

# (the trick, where it is, the code it avoids on the run path)
TRICKS: tuple[tuple[str, str, str], ...] = (
    ("[[evse]]: EVSE manager API, routing, live cost", "model/display.py -> model/evse.py, "
     "core/inbox.py -> core/evse_api.py", "import agent.model.evse, agent.core.evse_api"),
    ("HTML messages to text", "model/text.py", "import agent.model.htmltext"),
    ("display_message API module", "core/station.py", "import agent.core.messages"),
    ("local pricing (Rate calculator, HTTP client)", "process/runtime.py",
     "import agent.pricing.live"),
    ("urllib.parse for the pricing URL", "pricing/settings.py", "import urllib.parse"),
    ("argparse (not for `run --config`)", "cli.py", "import argparse"),
    ("plugin entry points", "outputs/registry.py", "import importlib.metadata"),
    ("segno's encoder without segno's writers", "outputs/qrmatrix.py", "import segno"),
    ("segno's encoder itself (qr/web extras)", "outputs/qrmatrix.py",
     "import agent.outputs.qrmatrix; agent.outputs.qrmatrix.encoder()"),
    ("web output (h11, its server)", "outputs/web/__init__.py",
     "import agent.outputs.web.server"),
    ("the dev tools (simulator, demo, replay)", "cli.py",
     "import agent.dev.replay, agent.dev.simulator"),
    # Dropped in issue 26: ssl (gmqtt loads it), agent.model.payment (the config loads it),
    # agent.core.pricing (the pricing's cost is agent.pricing.live): nothing saved; unloading
    # tomllib after the config: 0.09 MiB of the running agent's RSS (7 starts each).
)


def rss(python: str, code: str, runs: int) -> float:
    """Median RSS in KiB of `python -c code` once it says it is ready."""
    return statistics.median(idle_rss_kb([python, "-c", code + _READY_SLEEP], 0.3)
                             for _ in range(runs))


def main(argv: list[str] | None = None) -> int:
    """Print what each trick saves."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        python = board_python(Path(tmp))
        base = rss(python, RUN_PATH, args.runs)
        print(f"run path: {base / 1024:.2f} MiB (board venv, median of {args.runs})")
        print(f"{'saves MiB':>9}  trick (where)")
        for name, where, code in TRICKS:
            saved = (rss(python, f"{RUN_PATH}; {code}", args.runs) - base) / 1024
            verdict = "keep" if saved >= 0.1 else "DROP (< 0.1 MiB)"
            print(f"{saved:9.2f}  {name} ({where}): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
