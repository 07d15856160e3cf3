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
from agent.settings.config import Config, ConfigError, load, release_parser

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
    import argparse  # not for `run --config X`: ~0.4 MB and ~10 ms the board spends otherwise

    parser = argparse.ArgumentParser(prog="cost-agent",
                                     description="EVerest session cost display agent")
    parser.add_argument("--log-level", default="info", choices=LOG_LEVELS)
    # After the subcommand too; SUPPRESS so an absent one keeps the value given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log-level", default=argparse.SUPPRESS, choices=LOG_LEVELS)
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", parents=[common], help="run the agent")
    run.add_argument("--config", required=True, help="TOML configuration file")
    check = sub.add_parser("check-config", parents=[common], help="validate a config file")
    check.add_argument("path")
    sim = sub.add_parser("simulate", parents=[common], help="play EVerest's side on a broker")
    sim.add_argument("--config", help="take broker and module_id from this agent config")
    sim.add_argument("--host", default=None)
    sim.add_argument("--port", type=int, default=None)
    sim.add_argument("--module-id", default=None)
    sim.add_argument("--step", type=float, default=2.0, help="seconds between session steps")
    sim.add_argument("--repeat", action="store_true", help="play sessions until interrupted")
    sim.add_argument("--evses", type=int, default=0, metavar="N",
                     help="simulate a station with N EVSEs (EVSE manager API too; one simulated "
                          "second lasts step/2 s); default: the single scripted session")
    demo = sub.add_parser("demo", parents=[common],
                          help="private broker + simulator + agent on the console (~30 s)")
    demo.add_argument("--step", type=float, default=2.0)
    demo.add_argument("--evses", type=int, default=0,
                      help="a station with this many connectors side by side (EVSE API)")
    demo.add_argument("--serial-pty", action="store_true",
                      help="also write the line protocol to a pseudo-terminal and print its path")
    status = sub.add_parser("status", parents=[common],
                            help="summarise the running agent from its status file")
    status.add_argument("--config", help="read status.path from this agent config "
                                         "(default: /etc/cost-agent/config.toml if present)")
    status.add_argument("--path", help="the status file (overrides --config)")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    sub.add_parser("price", parents=[common], add_help=False,
                   help="compute costs from a be.ENERGISED price structure (see price --help)")
    return parser


def _run_args(argv: list[str]) -> tuple[str, str] | None:
    """(log level, config path) of a plain `run --config X` (any --log-level), else None.

    The service's command line, parsed without argparse; anything else (help, a typo, another
    subcommand) returns None and goes to the full parser, which also says what is wrong.
    """
    level, config, seen_run, i = "info", None, False, 0
    while i < len(argv):
        option, eq, value = argv[i].partition("=")
        if argv[i] == "run" and not seen_run:
            seen_run, i = True, i + 1
            continue
        if option not in ("--log-level", "--config") or (option == "--config" and not seen_run):
            return None
        if not eq:
            if i + 1 >= len(argv):
                return None
            value, i = argv[i + 1], i + 1
        i += 1
        if value.startswith("-") or not value:
            return None
        if option == "--config":
            config = value
        elif value in LOG_LEVELS:
            level = value
        else:
            return None
    return (level, config) if seen_run and config is not None else None


def _load(path: str, preflight: bool = True) -> Config:
    try:
        return load(path, preflight=preflight)
    except ConfigError as exc:
        print(f"cost-agent: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


async def _run(config: Config) -> int:
    # Before the runtime's imports, so that they reuse the parser's memory instead of new pages.
    release_parser()
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

    return _run_loop(run_demo(step_s=args.step, serial_pty=args.serial_pty, evses=args.evses))


def _status(args: argparse.Namespace) -> int:
    from agent.process.status_report import report

    path = args.path
    if path is None:
        config_path = args.config or (DEFAULT_CONFIG if os.path.exists(DEFAULT_CONFIG) else None)
        path = (_load(config_path, preflight=False) if config_path else Config()).status.path
    return report(path, as_json=args.json)


def _price_args(argv: list[str]) -> tuple[str, list[str]] | None:
    """(log level, price's own arguments) when the subcommand is `price`, else None."""
    level, i = "warning", 0  # price prints results; only problems are logged by default
    while i < len(argv) and argv[i].startswith("--log-level"):
        level, i = _level_at(argv, i)
    if argv[i:i + 1] != ["price"]:
        return None
    rest: list[str] = []
    i += 1
    while i < len(argv):
        if argv[i] == "--log-level" or argv[i].startswith("--log-level="):
            level, i = _level_at(argv, i)
        else:
            rest.append(argv[i])
            i += 1
    return level, rest


def _level_at(argv: list[str], i: int) -> tuple[str, int]:
    """The level of the `--log-level X` or `--log-level=X` at argv[i], and the next index."""
    option, _, value = argv[i].partition("=")
    if option != "--log-level":
        raise SystemExit(_usage_error(f"unrecognized argument {argv[i]}"))
    step = 1 if value else 2
    value = value or (argv[i + 1] if i + 1 < len(argv) else "")
    if value not in LOG_LEVELS:
        raise SystemExit(_usage_error(f"--log-level: invalid choice {value!r} "
                                      f"(choose from {', '.join(LOG_LEVELS)})"))
    return value, i + step


def _usage_error(message: str) -> int:
    print(f"cost-agent: error: {message}", file=sys.stderr)
    return EXIT_CONFIG


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `cost-agent` console script."""
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    finally:
        logs.shutdown()  # write what is queued (bounded wait), then stop the writer thread


def _main(args_list: list[str]) -> int:
    # `price` has its own argument parser (agent.pricing.cli): hand it everything after the word.
    price = _price_args(args_list)
    if price is not None:
        from agent.pricing.cli import main as price_main

        logs.setup(price[0])
        return price_main(price[1])
    run = _run_args(args_list)
    if run is not None:
        logs.setup(run[0])
        return _run_loop(_run(_load(run[1])))
    args = _parser().parse_args(args_list)
    logs.setup(args.log_level)
    if args.command == "check-config":
        config = _load(args.path)
        print(f"{args.path}: ok ({len(config.output)} output(s), "
              f"module_id {config.everest.module_id})")
        return 0
    if args.command == "run":
        return _run_loop(_run(_load(args.config)))
    if args.command == "simulate":
        return _simulate(args)
    if args.command == "demo":
        return _demo(args)
    if args.command == "status":
        return _status(args)
    return EXIT_CONFIG
