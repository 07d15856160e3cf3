"""The console script routes `price` to the pricing CLI with its own arguments."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.cli import run_config, split_global

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "pricing" / "example2_rate_chf.json"


def test_price_subcommand_through_the_main_cli() -> None:
    for prefix in ([], ["--log-level", "debug"]):
        result = subprocess.run(
            [sys.executable, "-m", "agent", *prefix, "price", "--structure", str(FIXTURE),
             "--consumption", "80000", "--json"],
            capture_output=True, text=True, cwd=REPO, check=False, timeout=60)
        assert result.returncode == 0, result.stderr
        doc = json.loads(result.stdout, parse_float=str, parse_int=str)
        assert (doc["costTotal"], doc["costTotalLocalCurrency"]) == ("52", "48.863")


def test_price_subcommand_bad_input_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"energy": {"unit": "Wh", "elements": [{"intervalChange": 5, '
                   '"intervalCosts": "cheap"}]}}')
    result = subprocess.run([sys.executable, "-m", "agent", "price", "--structure", str(bad),
                             "--consumption", "10"], capture_output=True, text=True, cwd=REPO,
                            check=False, timeout=60)
    assert result.returncode == 2
    assert "elements[0]" in result.stderr


def run_briefly(tmp_path: Path, *argv: str) -> str:
    """Start `cost-agent ARGV` (no broker), wait for its status file, SIGTERM; its stderr."""
    config = tmp_path / "agent.toml"
    status = tmp_path / "status.json"
    status.unlink(missing_ok=True)
    config.write_text(f'[mqtt]\nport = 9\n[status]\npath = "{status}"\ninterval_s = 0.2\n'
                      f'[state]\ndir = "{tmp_path}/state"\n')
    args = [a.replace("CONFIG", str(config)) for a in argv]
    proc = subprocess.Popen([sys.executable, "-m", "agent", *args], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not status.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    return err


def test_log_level_before_or_after_the_subcommand(tmp_path: Path) -> None:
    running = run_briefly(tmp_path, "run", "--config", "CONFIG")
    assert " INFO agent.process.runtime: running:" in running
    for argv in (["--log-level", "error", "run", "--config", "CONFIG"],
                 ["run", "--config", "CONFIG", "--log-level", "error"],
                 ["--log-level=debug", "run", "--log-level=error", "--config", "CONFIG"]):
        assert run_briefly(tmp_path, *argv) == "", argv  # nothing at error level happened


def test_log_level_with_price_and_check_config(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[status]\npath = ""\n[state]\ndir = ""\n')
    for argv in (["price", "--structure", str(FIXTURE), "--log-level", "debug", "--json"],
                 ["--log-level=error", "price", "--log-level=debug", "--structure",
                  str(FIXTURE)],
                 ["check-config", "--log-level", "error", str(good)],
                 ["--log-level", "debug", "check-config", str(good)]):
        result = subprocess.run([sys.executable, "-m", "agent", *argv], capture_output=True,
                                text=True, cwd=REPO, check=False, timeout=60)
        assert result.returncode == 0, (argv, result.stderr)
    for argv in (["price", "--log-level", "loud"], ["run", "--log-level", "loud"]):
        result = subprocess.run([sys.executable, "-m", "agent", *argv], capture_output=True,
                                text=True, cwd=REPO, check=False, timeout=60)
        assert result.returncode == 2 and "loud" in result.stderr, argv


@pytest.mark.parametrize(("argv", "split"), [
    (["run", "--config", "a.toml"], (None, "run", ["--config", "a.toml"])),
    (["run", "--config=a.toml", "--log-level", "debug"], ("debug", "run", ["--config=a.toml"])),
    (["--log-level=error", "run", "--config", "a"], ("error", "run", ["--config", "a"])),
    (["--log-level", "error", "run", "--log-level", "warning", "--config", "a"],
     ("warning", "run", ["--config", "a"])),
    (["price", "--structure", "s.json", "--log-level=debug"],
     ("debug", "price", ["--structure", "s.json"])),
    (["--version"], (None, None, ["--version"])),
    ([], (None, None, [])),
])
def test_log_level_is_global_before_or_after_the_subcommand(
        argv: list[str], split: tuple[str | None, str | None, list[str]]) -> None:
    assert split_global(argv) == split


@pytest.mark.parametrize("argv", [["--log-level", "loud", "run"], ["run", "--log-level"],
                                  ["price", "--log-level="]])
def test_an_invalid_log_level_is_a_usage_error(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        split_global(argv)
    assert exit_.value.code == 2


@pytest.mark.parametrize(("args", "config"), [
    (["--config", "a.toml"], "a.toml"),
    (["--config=a.toml"], "a.toml"),
    (["--config", "a", "--config", "b"], "b"),
    ([], None),
    (["--config"], None),
    (["--config", "--help"], None),
    (["--config="], None),
    (["--help", "--config", "a"], None),
    (["--config", "a", "extra"], None),
    (["run", "--config", "a"], None),
])
def test_run_has_one_parser_for_its_one_option(args: list[str], config: str | None,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    if config is not None:
        assert run_config(args) == config
        return
    with pytest.raises(SystemExit) as exit_:
        run_config(args)
    assert exit_.value.code == 2
    assert capsys.readouterr().err.startswith("usage: cost-agent [--log-level LEVEL] run --config")


def test_run_help_and_unknown_subcommand_through_the_console_script() -> None:
    def agent(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "agent", *argv], capture_output=True,
                              text=True, cwd=REPO, check=False, timeout=60)

    helped = agent("run", "--help")
    assert helped.returncode == 0 and "run --config FILE" in helped.stdout
    listed = agent("--help")
    assert listed.returncode == 0 and all(c in listed.stdout for c in ("run", "price", "status"))
    wrong = agent("rnu", "--config", "a")
    assert wrong.returncode == 2 and "invalid choice: 'rnu'" in wrong.stderr



def test_simulate_reads_only_the_broker_settings_of_an_agent_config(tmp_path: Path) -> None:
    # The simulator may run as another user than the agent (the boot test's DynamicUser): the
    # agent's directories are not its business, so they are not checked.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    config = tmp_path / "agent.toml"
    config.write_text(f'[mqtt]\nport = 1\n[state]\ndir = "{blocker}/state"\n')
    check = subprocess.run([sys.executable, "-m", "agent", "check-config", str(config)],
                           capture_output=True, text=True, cwd=REPO, timeout=30, check=False)
    assert check.returncode == 2 and "state.dir" in check.stderr
    sim = subprocess.run([sys.executable, "-m", "agent", "simulate", "--config", str(config),
                          "--step", "0.05"], capture_output=True, text=True, cwd=REPO,
                         timeout=60, check=False)
    assert sim.returncode != 2 and "state.dir" not in sim.stderr
