"""Command line: `cost-agent run|check-config|status|simulate|demo|price`."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from agent import __version__
from agent.process import logs
from agent.settings.config import Config, ConfigError, load

if TYPE_CHECKING:
    import argparse

log = logging.getLogger("agent")

EXIT_CONFIG = 2
# Where the packages (systemd unit, Buildroot, Yocto) install the configuration.
DEFAULT_CONFIG = "/etc/cost-agent/config.toml"
LOG_LEVELS = ("debug", "info", "warning", "error")


def _run_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop when it is installed (faster on small ARM cores), else asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        have_uvloop = False
    else:
        have_uvloop = True
    # Outside the except block: run inside it, every later traceback would carry a chained
    # "ImportError: uvloop" as its context.
    if not have_uvloop:
        return asyncio.run(main)
    return int(uvloop.run(main))


def _parser() -> argparse.ArgumentParser:
    import argparse  # not for `run --config X`: 0.39 MiB (bench/lazy_imports.py) and ~10 ms

    parser = argparse.ArgumentParser(prog="cost-agent",
                                     description="EVerest session cost display agent")
    # Listed for --help only: split_global() takes it out before, or after, the subcommand.
    parser.add_argument("--log-level", default="info", choices=LOG_LEVELS,
                        help="also accepted after the subcommand")
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    # `run` and `price` have their own parsers (run_config(), agent.pricing.cli): listed here.
    sub.add_parser("run", add_help=False, help="run the agent: run --config FILE")
    check = sub.add_parser("check-config", help="validate a config file")
    check.add_argument("path")
    sim = sub.add_parser("simulate", help="play EVerest's side on a broker")
    sim.add_argument("--config", help="take broker and module_id from this agent config")
    sim.add_argument("--host", default=None)
    sim.add_argument("--port", type=int, default=None)
    sim.add_argument("--module-id", default=None)
    sim.add_argument("--step", type=float, default=2.0, help="seconds between session steps")
    sim.add_argument("--repeat", action="store_true", help="play sessions until interrupted")
    sim.add_argument("--evses", type=int, default=0, metavar="N",
                     help="simulate a station with N EVSEs (EVSE manager API too; one simulated "
                          "second lasts step/2 s); default: the single scripted session")
    demo = sub.add_parser("demo",
                          help="private broker + simulator + agent on the console (~30 s)")
    demo.add_argument("--step", type=float, default=2.0)
    demo.add_argument("--evses", type=int, default=0,
                      help="a station with this many connectors side by side (EVSE API)")
    demo.add_argument("--serial-pty", action="store_true",
                      help="also write the line protocol to a pseudo-terminal and print its path")
    demo.add_argument("--capture", metavar="FILE",
                      help="with --evses: write EVerest's broker traffic there (mosquitto_sub "
                           "-F %%j), for `cost-agent replay`")
    status = sub.add_parser("status",
                            help="summarise the running agent from its status file")
    status.add_argument("--config", help="read status.path from this agent config "
                                         "(default: /etc/cost-agent/config.toml if present)")
    status.add_argument("--path", help="the status file (overrides --config)")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    sub.add_parser("price", add_help=False,
                   help="compute costs from a be.ENERGISED price structure (see price --help)")
    replay = sub.add_parser("replay", help="what each display showed during a capture of the "
                                           "station's broker traffic (docs/replay.md)")
    replay.add_argument("capture", help="mosquitto_sub -F %%j (or -F '%%U %%t %%x') output; "
                                        "- for standard input")
    replay.add_argument("--config", required=True, help="the station's agent config")
    replay.add_argument("--json", action="store_true",
                        help="one JSON line per view change: time, evse, view")
    replay.add_argument("--evse", type=int, default=None, metavar="N",
                        help="only the display of [[evse]] id N")
    return parser


def split_global(argv: list[str]) -> tuple[str | None, str | None, list[str]]:
    """(log level, subcommand, its own arguments): `--log-level` goes before or after it.

    The last `--log-level` wins; an invalid one is a usage error (exit 2). The subcommand is
    the first other word that is not an option; None when there is none (`--help`, `--version`).
    """
    level, rest, i = None, [], 0
    while i < len(argv):
        option, eq, value = argv[i].partition("=")
        if option != "--log-level":
            rest.append(argv[i])
            i += 1
            continue
        if not eq:
            value = argv[i + 1] if i + 1 < len(argv) else ""
            i += 1
        i += 1
        if value not in LOG_LEVELS:
            raise SystemExit(_usage_error(f"--log-level: invalid choice {value!r} "
                                          f"(choose from {', '.join(LOG_LEVELS)})"))
        level = value
    if rest and not rest[0].startswith("-"):
        return level, rest[0], rest[1:]
    return level, None, rest


RUN_USAGE = "usage: cost-agent [--log-level LEVEL] run --config FILE"


def run_config(args: list[str]) -> str:
    """The config path of `run --config FILE`, the service's command line; exit 2 otherwise.

    `run`'s only parser: without argparse, whose import costs the board ~0.4 MB and ~10 ms.
    """
    if args in (["-h"], ["--help"]):
        print(f"{RUN_USAGE}\n\nrun the agent with the TOML configuration FILE")
        raise SystemExit(0)
    config, i = None, 0
    while i < len(args):
        option, eq, value = args[i].partition("=")
        if option != "--config":
            raise SystemExit(_usage_error(f"run: unrecognized argument {args[i]!r}", RUN_USAGE))
        if not eq:
            value = args[i + 1] if i + 1 < len(args) else ""
            i += 1
        i += 1
        if not value or value.startswith("-"):
            raise SystemExit(_usage_error("run: --config: expected a file name", RUN_USAGE))
        config = value
    if config is None:
        raise SystemExit(_usage_error("run: the following arguments are required: --config",
                                      RUN_USAGE))
    return config


def _load(path: str, preflight: bool = True) -> Config:
    """The config at `path`; `preflight` also checks what its keys point at (files, TLS,
    directories, optional dependencies): for running the agent. A tool that only reads the
    broker settings (the simulator, `status`) skips that: it may run as another user."""
    try:
        config = load(path)
        if preflight:
            from agent.settings.preflight import check

            check(config)
        return config
    except ConfigError as exc:
        print(f"cost-agent: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


async def _run(config: Config) -> int:
    # The TOML parser stays loaded: unloading it saved 0.09 MiB of the running agent's RSS
    # (under issue 26's 0.1 MiB bar for a memory trick; bench/lazy_imports.py).
    from agent.process.runtime import Agent

    try:
        agent = Agent(config)
    except ConfigError as exc:
        print(f"cost-agent: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    agent.install_signal_handlers()
    return await agent.run()  # 1 after a task failed: systemd's Restart=on-failure acts on it


def _simulate(args: argparse.Namespace) -> int:
    from agent.dev.simulator import simulate

    # Only the broker and the module id are read: the agent's files and directories are the
    # agent's business (the simulator may run as another user).
    config = _load(args.config, preflight=False) if args.config else Config()
    host = args.host or config.mqtt.host
    port = args.port or config.mqtt.port
    module_id = args.module_id or config.everest.module_id
    return _run_loop(simulate(host, port, module_id, config.everest.topic_prefix,
                              step_s=args.step, repeat=args.repeat, evses=args.evses))


def _demo(args: argparse.Namespace) -> int:
    from agent.dev.demo import run_demo

    if args.capture and not args.evses:
        return _usage_error("demo --capture: only with --evses N")
    return _run_loop(run_demo(step_s=args.step, serial_pty=args.serial_pty, evses=args.evses,
                              capture=args.capture))


def _status(args: argparse.Namespace) -> int:
    from agent.process.status_report import report

    path = args.path
    if path is None:
        config_path = args.config or (DEFAULT_CONFIG if os.path.exists(DEFAULT_CONFIG) else None)
        path = (_load(config_path, preflight=False) if config_path else Config()).status.path
    return report(path, as_json=args.json)


def _usage_error(message: str, usage: str | None = None) -> int:
    if usage:
        print(usage, file=sys.stderr)
    print(f"cost-agent: error: {message}", file=sys.stderr)
    return EXIT_CONFIG


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `cost-agent` console script."""
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    finally:
        logs.shutdown()  # write what is queued (bounded wait), then stop the writer thread


def _main(args_list: list[str]) -> int:
    level, command, rest = split_global(args_list)
    if command == "price":  # price prints results; only problems are logged by default
        from agent.pricing.cli import main as price_main

        logs.setup(level or "warning")
        return price_main(rest)
    if command == "run":
        path = run_config(rest)
        logs.setup(level or "info")
        return _run_loop(_run(_load(path)))
    args = _parser().parse_args([command, *rest] if command else rest)
    # replay prints screens: only what goes wrong is logged by default
    logs.setup(level or ("warning" if args.command == "replay" else "info"))
    if args.command == "check-config":
        config = _load(args.path)
        print(f"{args.path}: ok ({len(config.output)} output(s), "
              f"module_id {config.everest.module_id})")
        return 0
    if args.command == "simulate":
        return _simulate(args)
    if args.command == "demo":
        return _demo(args)
    if args.command == "status":
        return _status(args)
    if args.command == "replay":
        from agent.dev.replay import main as replay_main

        # The outputs are not run: what their keys name on this machine does not matter.
        return replay_main(_load(args.config, preflight=False), args.capture, args.json,
                           args.evse)
    return EXIT_CONFIG
