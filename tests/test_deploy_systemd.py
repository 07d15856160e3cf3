"""systemd/: the hardened unit, its instance template, the drop-in examples and
the BusyBox/SysV init script.

The systemd-analyze checks (verify clean, security exposure <= 1.5) skip when
systemd-analyze is not installed; the static checks always run.
"""

from __future__ import annotations

import mmap
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest

from agent.outputs.file import FileConfig
from agent.process.sdnotify import Notifier
from agent.settings.config import StateConfig, StatusConfig

ROOT = Path(__file__).resolve().parent.parent
SYSTEMD = ROOT / "systemd"
UNIT = SYSTEMD / "cost-agent.service"
TEMPLATE = SYSTEMD / "cost-agent@.service"
EXAMPLES = SYSTEMD / "examples"
INIT_SCRIPT = SYSTEMD / "S95cost-agent"
MAX_EXPOSURE = 1.5

Unit = dict[str, dict[str, list[str]]]


def parse_unit(text: str) -> Unit:
    """Sections -> key -> every assignment in order (systemd keys repeat)."""
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        assert section is not None, f"assignment outside a section: {raw!r}"
        key, sep, value = line.partition("=")
        assert sep, f"not an assignment: {raw!r}"
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


def one(unit: Unit, section: str, key: str) -> str:
    """The single value of a key that must be set exactly once."""
    values = unit[section].get(key, [])
    assert len(values) == 1, f"[{section}] {key}= set {len(values)} times"
    return values[0]


def seconds(value: str) -> float:
    """A systemd time span of the simple forms used here: 30s, 2min, 500ms, 10."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(ms|s|min)?", value)
    assert m, f"unsupported time span {value!r}"
    factor = {"ms": 0.001, "s": 1.0, "min": 60.0, None: 1.0}[m.group(2)]
    return float(m.group(1)) * factor


@pytest.fixture(scope="module")
def unit() -> Unit:
    return parse_unit(UNIT.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- static checks


def test_service_lifecycle_settings(unit: Unit) -> None:
    svc = unit["Service"]
    assert one(unit, "Service", "Type") == "notify"
    assert one(unit, "Service", "NotifyAccess") == "main"
    assert one(unit, "Service", "Restart") == "on-failure"
    # bad config exits 2: restarting cannot help
    assert "2" in one(unit, "Service", "RestartPreventExitStatus").split()
    assert int(one(unit, "Unit", "StartLimitBurst")) >= 1
    assert seconds(one(unit, "Unit", "StartLimitIntervalSec")) >= 60
    # the agent stops within 1 s on SIGTERM; leave it room, not minutes
    assert 1 < seconds(one(unit, "Service", "TimeoutStopSec")) <= 30
    assert one(unit, "Install", "WantedBy") == "multi-user.target"
    assert svc["ExecStart"] == ["/usr/bin/cost-agent run --config /etc/cost-agent/config.toml"]


def test_broker_and_network_ordering(unit: Unit) -> None:
    after = " ".join(unit["Unit"]["After"]).split()
    wants = " ".join(unit["Unit"]["Wants"]).split()
    assert "network-online.target" in after and "network-online.target" in wants
    assert "mosquitto.service" in after
    # a late or missing broker must not keep the agent from starting
    assert "mosquitto.service" not in " ".join(unit["Unit"].get("Requires", []))
    assert "mosquitto.service" not in " ".join(unit["Unit"].get("BindsTo", []))


def test_watchdog_matches_agent_cadence(unit: Unit, monkeypatch: pytest.MonkeyPatch) -> None:
    watchdog = seconds(one(unit, "Service", "WatchdogSec"))
    monkeypatch.setenv("WATCHDOG_USEC", str(int(watchdog * 1_000_000)))
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    interval = Notifier.watchdog_interval()
    assert interval is not None
    # the agent pings three times per period: a single late ping is tolerated
    assert interval == pytest.approx(watchdog / 3)
    # and the period is long enough for a loaded embedded board, short
    # enough that a hung loop does not go unnoticed for minutes
    assert 10 <= watchdog <= 120


def test_directories_match_agent_defaults(unit: Unit) -> None:
    state_dir = PurePosixPath(StateConfig().dir)
    status = PurePosixPath(StatusConfig().path)
    display = PurePosixPath(FileConfig().path)
    assert state_dir == PurePosixPath("/var/lib") / one(unit, "Service", "StateDirectory")
    runtime = PurePosixPath("/run") / one(unit, "Service", "RuntimeDirectory")
    assert status.parent == runtime
    assert display.parent == runtime
    # a display process of another user reads display.json
    assert one(unit, "Service", "RuntimeDirectoryMode") == "0755"


def test_sandboxing_settings(unit: Unit) -> None:
    expected = {
        "DynamicUser": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "MemoryDenyWriteExecute": "yes",
        "DevicePolicy": "closed",
        "UMask": "0077",
        "LockPersonality": "yes",
        "RestrictNamespaces": "yes",
        "SystemCallArchitectures": "native",
    }
    for key, value in expected.items():
        assert one(unit, "Service", key) == value, key
    assert "@system-service" in unit["Service"]["SystemCallFilter"]
    allowed = {v.split()[0] for v in unit["Service"]["DeviceAllow"]}
    assert {"char-ttyS", "char-ttyUSB", "char-ttyACM", "char-gpiochip"} <= allowed
    for value in unit["Service"]["DeviceAllow"]:
        assert value.split()[1] == "rw"


def test_template_keeps_the_same_hardening(unit: Unit) -> None:
    template = parse_unit(TEMPLATE.read_text(encoding="utf-8"))
    instance_keys = {"ExecStart", "StateDirectory", "RuntimeDirectory", "Description"}
    for section in ("Unit", "Service", "Install"):
        ours = {k: v for k, v in unit[section].items() if k not in instance_keys}
        theirs = {k: v for k, v in template[section].items() if k not in instance_keys}
        assert ours == theirs, section
    assert one(template, "Service", "ExecStart") == (
        "/usr/bin/cost-agent run --config /etc/cost-agent/%i.toml")
    assert one(template, "Service", "StateDirectory") == "cost-agent-%i"
    assert one(template, "Service", "RuntimeDirectory") == "cost-agent-%i"
    assert "%i" in one(template, "Unit", "Description")


def test_dropin_examples_are_service_overrides() -> None:
    dropins = sorted(EXAMPLES.glob("*.service.d/*.conf"))
    names = {p.name for p in dropins}
    assert {"serial-gpio.conf", "exec-hook.conf", "credentials.conf", "instance.conf"} <= names
    for path in dropins:
        parsed = parse_unit(path.read_text(encoding="utf-8"))
        assert "Service" in parsed, path
    serial = parse_unit((EXAMPLES / "cost-agent.service.d/serial-gpio.conf").read_text())
    assert "dialout" in one(serial, "Service", "SupplementaryGroups").split()
    hook = parse_unit((EXAMPLES / "cost-agent.service.d/exec-hook.conf").read_text())
    assert one(hook, "Service", "MemoryDenyWriteExecute") == "no"


# ------------------------------------------------------------ systemd-analyze


def require_systemd_analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    return tool


@pytest.fixture
def staged(tmp_path: Path) -> Path:
    """Units and drop-in examples copied side by side, ExecStart pointed at a stub.

    `verify` checks that the ExecStart binary exists; /usr/bin/cost-agent is
    not installed on a development machine, so a stub executable stands in.
    """
    stub = tmp_path / "bin" / "cost-agent"
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    units = tmp_path / "units"
    units.mkdir()
    for src in (UNIT, TEMPLATE):
        text = src.read_text(encoding="utf-8").replace("/usr/bin/cost-agent", str(stub))
        (units / src.name).write_text(text, encoding="utf-8")
    for dropin_dir in EXAMPLES.glob("*.service.d"):
        shutil.copytree(dropin_dir, units / dropin_dir.name)
    return units


def analyze(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_systemd_analyze(), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.mark.parametrize("name", ["cost-agent.service", "cost-agent@.service",
                                  "cost-agent@connector2.service"])
def test_systemd_analyze_verify_is_clean(staged: Path, name: str) -> None:
    if name == "cost-agent@connector2.service":
        # an instance of the template, with the instance drop-in applied
        (staged / name).symlink_to("cost-agent@.service")
    result = analyze("verify", "--man=no", f"./{name}", cwd=staged)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_systemd_analyze_verify_catches_mistakes(staged: Path) -> None:
    """The verify check above can fail: a typo in a directive is reported."""
    unit = staged / "cost-agent.service"
    unit.write_text(unit.read_text().replace("ProtectHome=yes", "ProtectHome=yes\nProtectHoem=yes"))
    result = analyze("verify", "--man=no", "./cost-agent.service", cwd=staged)
    assert "ProtectHoem" in result.stderr


def exposure(staged: Path, name: str) -> float:
    result = analyze("security", "--offline=true", "--no-pager", f"./{name}", cwd=staged)
    if "--offline" in result.stderr and "unrecognized" in result.stderr:
        pytest.skip("systemd-analyze is older than v250 (no --offline)")
    m = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", result.stdout)
    assert m, result.stdout + result.stderr
    return float(m.group(1))


def test_security_exposure_of_the_unit(staged: Path) -> None:
    # drop-ins would change the score: measure the unit as shipped
    for dropin_dir in staged.glob("*.service.d"):
        shutil.rmtree(dropin_dir)
    assert exposure(staged, "cost-agent.service") <= MAX_EXPOSURE


def test_security_exposure_of_a_template_instance(staged: Path) -> None:
    for dropin_dir in staged.glob("*.service.d"):
        shutil.rmtree(dropin_dir)
    (staged / "cost-agent@second.service").symlink_to("cost-agent@.service")
    assert exposure(staged, "cost-agent@second.service") <= MAX_EXPOSURE


def test_security_score_reflects_the_sandbox(staged: Path) -> None:
    """The exposure check can fail: the unit without its sandbox scores high."""
    bare = staged / "bare.service"
    bare.write_text("[Service]\nType=notify\nExecStart=/bin/true\n")
    assert exposure(staged, "bare.service") > 5


# ------------------------------------------- MemoryDenyWriteExecute and CPython

MDWE_CHILD = textwrap.dedent(r"""
    import ctypes, mmap, sys
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        print("NO-MDWE", ctypes.get_errno()); sys.exit(0)
    # the restriction is in force: writable+executable memory is refused
    try:
        mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except OSError:
        pass
    else:
        print("W+X ALLOWED"); sys.exit(1)
    # what the agent's runtime loads and does
    import asyncio, decimal, json, ssl, tomllib, html.parser, urllib.request, termios
    import importlib.metadata, unicodedata
    import msgspec, gmqtt
    from agent import cli
    from agent.settings import config
    from agent.process import mqtt, workers
    from agent.model import display
    ssl.create_default_context()
    async def main() -> bytes:
        await asyncio.sleep(0)
        await asyncio.to_thread(sum, [1, 2])
        return msgspec.json.encode({"v": 1})
    assert asyncio.run(main()) == b'{"v":1}'
    try:
        import uvloop
    except ImportError:
        pass
    else:
        assert uvloop.run(main()) == b'{"v":1}'
    print("OK")
""")


def test_cpython_runtime_runs_under_memory_deny_write_execute() -> None:
    """MemoryDenyWriteExecute=yes: the kernel's PR_SET_MDWE (what systemd uses
    where available) enforces the same W^X rule; the agent's imports and event
    loop (asyncio, and uvloop when installed) must still work under it."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", MDWE_CHILD], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    if result.stdout.startswith("NO-MDWE"):
        pytest.skip(f"kernel has no PR_SET_MDWE (Linux >= 6.3): {result.stdout.strip()}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "OK"


# ---------------------------------------------------------- SysV init script


def test_init_script_passes_shellcheck() -> None:
    tool = shutil.which("shellcheck")
    if tool is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    result = subprocess.run([tool, "-s", "sh", str(INIT_SCRIPT)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout


def test_init_script_layout() -> None:
    text = INIT_SCRIPT.read_text(encoding="utf-8")
    assert text.startswith("#!/bin/sh\n")
    assert re.search(r'^DAEMON="cost-agent"$', text, re.M)
    assert re.search(r'^PIDFILE="/var/run/\$DAEMON.pid"$', text, re.M)
    assert 'run --config "$COST_AGENT_CONFIG"' in text
    assert "/etc/cost-agent/config.toml" in text
    for verb in ("start)", "stop)", "restart|reload)"):
        assert verb in text


FAKE_AGENT = """#!/bin/sh
echo "agent $$ $*"
echo $$ >> "{pids}"
trap 'echo "agent $$ TERM"; exit 0' TERM
code=$(cat "{exitcode}" 2>/dev/null)
[ -n "$code" ] && exit "$code"
while :; do sleep 0.05; done
"""


class InitHarness:
    """Runs S95cost-agent against a fake agent in a temporary tree."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.pids = tmp / "pids"
        self.exitcode = tmp / "exitcode"
        self.pidfile = tmp / "cost-agent.pid"
        self.log = tmp / "agent.log"
        agent = tmp / "fake-agent"
        agent.write_text(FAKE_AGENT.format(pids=self.pids, exitcode=self.exitcode))
        agent.chmod(0o755)
        self.env = dict(
            os.environ,
            COST_AGENT_BIN=str(agent), COST_AGENT_USER="", COST_AGENT_LOG=str(self.log),
            COST_AGENT_RUNDIR=str(tmp / "run"), COST_AGENT_STATEDIR=str(tmp / "state"),
            COST_AGENT_PIDFILE=str(self.pidfile), RESPAWN_DELAY="0.2",
            COST_AGENT_CONFIG=str(tmp / "config.toml"),
        )

    def run(self, verb: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["sh", str(INIT_SCRIPT), verb], env=self.env, capture_output=True,
                              text=True, timeout=60, check=False)

    def agent_pids(self) -> list[int]:
        if not self.pids.exists():
            return []
        return [int(x) for x in self.pids.read_text().split()]

    def wait_for(self, what: str, cond: object, timeout: float = 10.0) -> None:
        assert callable(cond)
        deadline = time.monotonic() + timeout
        while not cond():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)

    def supervisor(self) -> int:
        return int(self.pidfile.read_text())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (not yet reaped by our init) counts as gone
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def init(tmp_path: Path) -> Iterator[InitHarness]:
    if shutil.which("start-stop-daemon") is None:
        pytest.skip("start-stop-daemon is not installed (dpkg or BusyBox provides it)")
    harness = InitHarness(tmp_path)
    yield harness
    harness.run("stop")
    for pid in harness.agent_pids():
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_init_script_starts_respawns_and_stops(init: InitHarness) -> None:
    assert init.run("start").stdout.strip() == "Starting cost-agent: OK"
    init.wait_for("the agent", lambda: len(init.agent_pids()) == 1)
    first = init.agent_pids()[0]
    supervisor = init.supervisor()
    assert init.run("status").returncode == 0
    assert init.run("start").stdout.strip() == "Starting cost-agent: already running"

    os.kill(first, signal.SIGKILL)  # a crash
    init.wait_for("the respawn", lambda: len(init.agent_pids()) == 2)
    second = init.agent_pids()[1]
    assert second != first and alive(second)
    assert init.supervisor() == supervisor

    assert init.run("stop").returncode == 0
    init.wait_for("the agent to stop", lambda: not alive(second))
    assert not alive(supervisor)
    assert not init.pidfile.exists()
    assert init.run("status").returncode == 3
    log = init.log.read_text()
    assert f"agent {first} run --config {init.tmp / 'config.toml'}" in log
    assert "restarting" in log
    assert f"agent {second} TERM" in log  # SIGTERM reached the agent: clean stop
    assert (init.tmp / "run").is_dir() and (init.tmp / "state").is_dir()
    assert (init.tmp / "state").stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize(("code", "respawned"), [(2, False), (0, False), (1, True)])
def test_init_script_respawn_policy(init: InitHarness, code: int, respawned: bool) -> None:
    init.exitcode.write_text(f"{code}\n")
    assert init.run("start").returncode == 0
    if respawned:
        init.wait_for("respawns", lambda: len(init.agent_pids()) >= 2)
        init.exitcode.unlink()
        assert init.run("status").returncode == 0
    else:
        init.wait_for("the supervisor to give up", lambda: init.run("status").returncode == 3)
        time.sleep(0.5)  # longer than RESPAWN_DELAY: no second start
        assert len(init.agent_pids()) == 1
        assert "not restarting" in init.log.read_text()


def test_mdwe_probe_itself_detects_write_execute_memory() -> None:
    """Sanity: without the prctl, W+X anonymous memory is allowed here, so the
    refusal seen in the child above really comes from the MDWE restriction."""
    try:
        m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except OSError as exc:
        pytest.skip(f"this process already refuses W+X memory: {exc}")
    m.close()
