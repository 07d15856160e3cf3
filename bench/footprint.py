"""Footprint and speed of the real agent process against a bare `python -c "import asyncio"`.

Usage: `.venv/bin/python bench/footprint.py [--runs N] [--quick] [--check] [--loop both]`
(starts a private mosquitto). In one run it measures, as medians over `--runs` repetitions:

- start: spawn to exit of `python -c "import asyncio"` vs spawn to the agent's first `true`
  on `.../m2e/communication_check` (a subscriber is connected before the spawn);
- RSS: a bare `python -c "import asyncio; <sleep>"` vs the idle agent (both after `--settle`),
  and the floor under it: the agent's libraries alone (asyncio, msgspec, gmqtt imported, the
  event loop made: uvloop's when installed); the agent's own RSS is the agent minus that floor;
- idle CPU: utime+stime of the agent from /proc over `--idle` seconds of 1 Hz heartbeats,
  as % of one core;
- growth: RSS before/after `--messages` messages (heartbeats, default_price, session_cost);
- stop: SIGTERM to exit;
- web: idle RSS with a web output serving two open event streams (two kiosk pages), minus the
  idle RSS without it (`--no-web` skips it).

All of it runs, by default, in a venv of the agent and its runtime packages only (`--env board`,
the interpreter of this environment, the packages linked from here): what the image installs.
`--env here` measures in this environment as it is (a development venv's bare python also pays
for its editable-install hook, and msgspec imports mypy's typing_extensions there).
`--rss-only` takes the RSS figures alone (seconds, no timing in the verdict): `make test` runs it.

`--soak N [--rate R]` instead feeds N session_costs at R per second, smoothly (5 ms chunks),
and reports what the agent took and its longest standstill while messages waited (the status
file, written every 50 ms, is the resolution; `--status-interval`). What it took is read after the
agent's clean stop (its last status write), so it is final, not a sample of a moving count.

The agent package is byte-compiled first, as on the board (buildroot installs .pyc; here
PYTHONDONTWRITEBYTECODE would make every start compile it from source): `--source` skips that.
`--check` exits 1 when a limit of issue 10 is exceeded (RSS 1.30x, start 2.0x, idle CPU 0.2 %,
growth 1 MB; the web output's +2 MiB of issue 18; the agent's own RSS 2 MiB of issue 20).
Each measurement is a function taking the command to start, so other ways of running the agent
(another loop, an emulator) only need another command.

`--guest-rss` (for qemu-user, where VmRSS includes the emulator): starts the agent `--runs`
times and prints, per run, its idle RSS, the RSS of the agent's own mappings (method:
bench/guest_rss.py) and SIGTERM to exit, as `run N: ...` lines (scripts/arm.sh reads them).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent.dev.broker import Mosquitto, free_port  # noqa: E402
from bench import guest_rss, payloads, soak_probe  # noqa: E402

MODULE_ID = "session_cost_consumer"
BASE = f"everest_api/1/{MODULE_ID}/{MODULE_ID}/"
CHECK_TOPIC = BASE + "m2e/communication_check"
SLEEP_S = 3600

# The limits of issue 10 by figure name; the ratios are agent / bare python.
LIMITS: dict[str, float] = {"rss_ratio": 1.30, "start_ratio": 2.0, "idle_cpu_pct": 0.2,
                            "growth_mb": 1.0, "web_mb": 2.0, "own_mb": 2.0}

# Running the agent on asyncio's own loop although uvloop is installed: a None entry in
# sys.modules makes `import uvloop` raise ImportError, which the CLI takes as "not installed".
_NO_UVLOOP = "import sys; sys.modules['uvloop'] = None; "
_AGENT_MAIN = "import sys; sys.argv[0] = 'cost-agent'; from agent.cli import main; sys.exit(main())"


def agent_command(config: Path, loop: str = "auto", python: str = sys.executable,
                  prelude: str = "") -> list[str]:
    """The command starting the agent: as installed (`auto`, uvloop when present) or `asyncio`;
    `prelude`: Python code run in the agent's process before the agent."""
    run = ["run", "--config", str(config)]
    if loop == "asyncio" or prelude:
        code = (_NO_UVLOOP if loop == "asyncio" else "") + prelude + _AGENT_MAIN
        return [python, "-c", code, *run]
    return [python, "-m", "agent", *run]


def bare_command(sleep: bool, python: str = sys.executable) -> list[str]:
    """The baseline: the same interpreter importing asyncio (and sleeping, for its RSS)."""
    return [python, "-c", "import asyncio" + (_READY_SLEEP if sleep else "")]


# Says it has imported (so that a loaded machine cannot make the RSS be read early), then sleeps.
_READY_SLEEP = f"; print('ready', flush=True); import time; time.sleep({SLEEP_S})"


def floor_command(loop: str, python: str = sys.executable) -> list[str]:
    """The agent's libraries without the agent: asyncio, msgspec and gmqtt imported and the
    event loop the agent would run on made (uvloop's holds a 256 KB receive buffer), asleep."""
    make = ("import uvloop; uvloop.new_event_loop()" if loop == "auto" and _has_uvloop(python)
            else "asyncio.new_event_loop()")
    return [python, "-c", f"import asyncio, msgspec, gmqtt; {make}{_READY_SLEEP}"]


def _has_uvloop(python: str) -> bool:
    return subprocess.run([python, "-c", "import uvloop"], capture_output=True,
                          check=False).returncode == 0


# What the board's image installs (buildroot/, yocto/): the agent and its runtime packages, no
# test tools and no editable-install hook. Measured in the development venv instead, the bare
# side also pays for pathlib (the editable finder's import at start-up, ~0.6 MB) and msgspec
# imports typing_extensions (mypy's dependency, ~0.3 MB): neither is on a board.
BOARD_PACKAGES = ("msgspec", "gmqtt", "uvloop", "h11", "segno")


def board_python(where: Path) -> str:
    """A venv under `where` holding only the agent and BOARD_PACKAGES (linked from this
    environment, the ones installed here); returns its interpreter."""
    import importlib.util
    import venv

    home = where / "board-venv"
    venv.create(home, with_pip=False, symlinks=True)
    python = home / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "agent").symlink_to(REPO / "agent")
    for name in BOARD_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            (site / name).symlink_to(next(iter(spec.submodule_search_locations)))
    return str(python)


def agent_config(tmp: Path, port: int, status_interval_s: float = 5.0,
                 web_port: int | None = None) -> Path:
    """A minimal agent config: the private broker and one file output under `tmp` (and the web
    display on `web_port`)."""
    path = tmp / f"agent-{status_interval_s:g}{'-web' if web_port else ''}.toml"
    path.write_text(f"""
[everest]
module_id = "{MODULE_ID}"
[mqtt]
port = {port}
[status]
path = "{tmp}/status.json"
interval_s = {status_interval_s}
[state]
dir = "{tmp}/state"
[[output]]
type = "file"
path = "{tmp}/display.json"
""" + (f'[[output]]\ntype = "web"\nlisten = "127.0.0.1:{web_port}"\n' if web_port else ""))
    return path


def compile_agent() -> None:
    """Byte-compile the agent package, as the board's image ships it (buildroot writes .pyc).

    Without it every start would compile the agent's modules from source (PYTHONDONTWRITEBYTECODE
    is set here and in the unit), while the interpreter's own modules come compiled: ~30-40 ms of
    the start that the board does not spend.
    """
    if not compileall.compile_dir(str(REPO / "agent"), quiet=1):
        raise RuntimeError("could not byte-compile the agent package")


# ---- /proc -------------------------------------------------------------------------------

def rss_kb(pid: int) -> int:
    """Resident set size of a process, KiB (0 once it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # the name may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- a minimal MQTT 3.1.1 client (QoS 0): fast enough to flood, no event loop ------------

def _length(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = n >> 7, n & 0x7F
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


def publish_packet(topic: str, payload: bytes) -> bytes:
    """An MQTT PUBLISH packet, QoS 0, not retained."""
    body = _utf8(topic) + payload
    return b"\x30" + _length(len(body)) + body


class RawMqtt:
    """A blocking MQTT client on one socket: connect, subscribe, publish, wait for a publish."""

    def __init__(self, port: int, client_id: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = b""
        # Clean session, keepalive 0: the broker never expects a ping from an idle bench.
        body = _utf8("MQTT") + b"\x04\x02\x00\x00" + _utf8(client_id)
        self.sock.sendall(b"\x10" + _length(len(body)) + body)
        kind, _ = self._packet(10.0)
        if kind != 0x20:
            raise RuntimeError("no CONNACK")

    def subscribe(self, topic: str) -> None:
        """Subscribe at QoS 0 and wait for the SUBACK."""
        body = b"\x00\x01" + _utf8(topic) + b"\x00"
        self.sock.sendall(b"\x82" + _length(len(body)) + body)
        while self._packet(10.0)[0] != 0x90:
            pass

    def send(self, data: bytes) -> None:
        """Write ready-made packets."""
        self.sock.sendall(data)

    def wait_publish(self, topic: str, payload: bytes, timeout: float) -> None:
        """Block until a PUBLISH of `payload` on `topic` arrives."""
        deadline = time.monotonic() + timeout
        want = _utf8(topic) + payload
        while True:
            kind, body = self._packet(deadline - time.monotonic())
            if kind & 0xF0 == 0x30 and body == want:
                return

    def _packet(self, timeout: float) -> tuple[int, bytes]:
        while True:
            parsed = self._parse()
            if parsed is not None:
                return parsed
            if timeout <= 0:
                raise TimeoutError("no packet from the broker")
            self.sock.settimeout(timeout)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("broker closed the connection")
            self._buf += chunk

    def _parse(self) -> tuple[int, bytes] | None:
        buf, n, shift, i = self._buf, 0, 0, 1
        while True:
            if i >= len(buf):
                return None
            n |= (buf[i] & 0x7F) << shift
            shift += 7
            i += 1
            if not buf[i - 1] & 0x80:
                break
        if len(buf) < i + n:
            return None
        self._buf = buf[i + n:]
        return buf[0], buf[i:i + n]

    def close(self) -> None:
        """DISCONNECT and close."""
        try:
            self.sock.sendall(b"\xe0\x00")
        finally:
            self.sock.close()


# ---- processes ---------------------------------------------------------------------------

@contextmanager
def running(command: Sequence[str], stdout: int = subprocess.DEVNULL
            ) -> Iterator[subprocess.Popen[bytes]]:
    """A process that is killed on the way out if it is still there."""
    proc = subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=stdout,
                            stderr=subprocess.DEVNULL, cwd=REPO)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()  # a clean stop first: the agent's exit handlers run
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        proc.wait()


def bare_start_s(runs: int, python: str = sys.executable) -> list[float]:
    """Spawn to exit of `python -c "import asyncio"`, once per run."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(bare_command(sleep=False, python=python), check=True, cwd=REPO)
        times.append(time.perf_counter() - start)
    return times


def bare_rss_kb(settle: float, python: str = sys.executable) -> int:
    """RSS of a sleeping `python -c "import asyncio; ..."`."""
    return idle_rss_kb(bare_command(sleep=True, python=python), settle)


def idle_rss_kb(command: Sequence[str], settle: float) -> int:
    """RSS of a process `settle` seconds after it said `ready` on stdout."""
    with running(command, stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        if proc.stdout.readline() != b"ready\n":
            raise RuntimeError(f"{command[-1][:60]!r} did not start")
        time.sleep(settle)
        return rss_kb(proc.pid)


@dataclass
class AgentRun:
    """One agent start: time to its first communication check, idle RSS, SIGTERM to exit."""

    start_s: float
    rss_kb: int
    stop_s: float
    exit_status: int


def agent_run(command: Sequence[str], port: int, settle: float) -> AgentRun:
    """Start the agent, time its first `true` check, take its RSS after `settle`, SIGTERM it."""
    watcher = RawMqtt(port, f"bench-watch-{os.getpid()}")
    try:
        watcher.subscribe(CHECK_TOPIC)
        start = time.perf_counter()
        with running(command) as proc:
            watcher.wait_publish(CHECK_TOPIC, b"true", timeout=30)
            first = time.perf_counter() - start
            time.sleep(settle)
            rss = rss_kb(proc.pid)
            stop = time.perf_counter()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=10)
            return AgentRun(first, rss, time.perf_counter() - stop, code)
    finally:
        watcher.close()


def web_rss_kb(command: Sequence[str], port: int, web_port: int, settle: float) -> int:
    """Idle RSS of the agent with a web output serving a page load and two open event streams
    (the kiosk pages of a two-connector station)."""
    watcher = RawMqtt(port, f"bench-web-{os.getpid()}")
    pages: list[socket.socket] = []
    try:
        watcher.subscribe(CHECK_TOPIC)
        with running(command) as proc:
            watcher.wait_publish(CHECK_TOPIC, b"true", timeout=30)
            for path in ("/", "/static/app.js", "/static/style.css", "/config.json"):
                _http_get(web_port, path)
            for _ in range(2):
                page = socket.create_connection(("127.0.0.1", web_port), timeout=10)
                page.sendall(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{web_port}\r\n\r\n"
                             .encode())
                got = b""
                while b"event: view" not in got:
                    chunk = page.recv(65536)
                    if not chunk:
                        raise RuntimeError("the web display closed the event stream")
                    got += chunk
                pages.append(page)
            time.sleep(settle)
            rss = rss_kb(proc.pid)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)
            return rss
    finally:
        for page in pages:
            page.close()
        watcher.close()


def _http_get(port: int, path: str) -> bytes:
    deadline = time.monotonic() + 10
    while True:  # the page is served a moment after the agent's first communication check
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            break
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    with sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                     .encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    if not data.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"GET {path}: {data[:40]!r}")
    return data


def idle_cpu_pct(command: Sequence[str], port: int, seconds: float, settle: float) -> float:
    """The agent's CPU, % of one core, over `seconds` of 1 Hz heartbeats (after `settle`)."""
    feeder = RawMqtt(port, f"bench-beat-{os.getpid()}")
    try:
        feeder.subscribe(CHECK_TOPIC)
        with running(command) as proc:
            feeder.wait_publish(CHECK_TOPIC, b"true", timeout=30)
            beat = 1
            next_beat = time.monotonic()

            def beat_until(deadline: float) -> None:
                nonlocal beat, next_beat
                while (now := time.monotonic()) < deadline:
                    if now >= next_beat:
                        feeder.send(publish_packet(BASE + "e2m/heartbeat", b"%d" % beat))
                        beat += 1
                        next_beat += 1.0
                    time.sleep(min(next_beat, deadline) - now)

            beat_until(time.monotonic() + settle)
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
            beat_until(t0 + seconds)
            cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
            return 100.0 * (cpu1 - cpu0) / (t1 - t0)
    finally:
        feeder.close()


def _mix(count: int) -> Iterator[bytes]:
    """`count` PUBLISH packets: per 10, 8 heartbeats, a session_cost and a default_price."""
    costs = [publish_packet(BASE + "e2m/session_cost",
                            payloads.session_cost(total=100000 + 37 * i, energy_wh=20000 + i))
             for i in range(64)]
    prices = [publish_packet(BASE + "e2m/default_price", payloads.default_price()),
              publish_packet(BASE + "e2m/default_price",
                             payloads.default_price().replace(b"0.59", b"0.61"))]
    beat_topic = BASE + "e2m/heartbeat"
    for i in range(count):
        slot = i % 10
        if slot == 4:
            yield costs[(i // 10) % len(costs)]
        elif slot == 9:
            yield prices[(i // 10) % 2]
        else:
            yield publish_packet(beat_topic, b"%d" % (i + 1))


def _received(status: Path, topic: str | None = None) -> int:
    try:
        counts = json.loads(status.read_text())["received"]
        return int(counts[topic]) if topic else sum(counts.values())
    except (OSError, ValueError, KeyError):
        return -1


@dataclass
class Growth:
    """RSS before and after a flood of messages, and how many the agent took."""

    before_kb: int
    after_kb: int
    sent: int
    received: int

    @property
    def mb(self) -> float:
        """Growth in MB (10^6 bytes)."""
        return (self.after_kb - self.before_kb) * 1024 / 1e6


# Below the agent's queue of messages not yet taken (agent.process.mqtt.QUEUE_LIMIT, 4096): a burst
# larger than that may be dropped by design when the agent is slower than the broker.
FLOOD_BATCH = 3000
# The status file of the growth run is written this often: how the bench knows what was taken.
FLOOD_STATUS_S = 0.1
# The flood gives up when the agent's count has not moved for this long.
FLOOD_STALL_S = 10.0


def rss_growth(command: Sequence[str], port: int, status: Path, messages: int,
               batch: int = FLOOD_BATCH) -> Growth:
    """Publish `messages` messages (after a warm-up) in batches, each once the previous is taken."""
    feeder = RawMqtt(port, f"bench-flood-{os.getpid()}")
    try:
        feeder.subscribe(CHECK_TOPIC)
        status.unlink(missing_ok=True)
        with running(command) as proc:
            feeder.wait_publish(CHECK_TOPIC, b"true", timeout=30)
            warm = 20000  # first sessions, views, files, buffers: start-up, not growth
            stream, sent = _mix(warm + messages), 0

            def flood(n: int) -> bool:
                """Send n more messages in batches; False when the agent stopped taking them
                (its count has not moved for FLOOD_STALL_S)."""
                nonlocal sent
                goal = sent + n
                while sent < goal:
                    count = min(batch, goal - sent)
                    feeder.send(b"".join(next(stream) for _ in range(count)))
                    sent += count
                    # The status file says what the agent took: wait for it, so that no burst
                    # outgrows the agent's queue however slow this machine is at the moment.
                    deadline, taken = time.monotonic() + FLOOD_STALL_S, -1
                    while (now := _received(status)) < sent:
                        if now > taken:  # progress: slow, not stopped
                            deadline, taken = time.monotonic() + FLOOD_STALL_S, now
                        elif time.monotonic() > deadline:
                            return False
                        time.sleep(FLOOD_STATUS_S / 2)
                return True

            if not flood(warm):
                raise RuntimeError(f"growth: the agent stopped taking messages in the warm-up "
                                   f"(took {_received(status)} of {sent})")
            before = rss_kb(proc.pid)
            flood(messages)
            after = rss_kb(proc.pid)
            # What was taken is final by construction: the agent's clean stop writes the status
            # file once more after its last decode, however late its periodic writes were.
            proc.terminate()
            code = proc.wait(timeout=60)
            if code != 0:
                raise RuntimeError(f"growth: the agent's stop ended with exit status {code}")
    finally:
        feeder.close()
    return Growth(before, after, sent - warm, _received(status) - warm)


@dataclass
class Soak:
    """A paced feed of session_costs: what the agent took, and its longest standstill."""

    rate: float
    sent: int
    taken: int
    seconds: float
    longest_gap_s: float  # no message taken although the feed was ahead (status resolution)
    slow_windows: int  # 0.5 s windows below half the offered rate while the feed was ahead
    status_interval_s: float

    def text(self) -> str:
        """One line for the report."""
        lost = self.sent - self.taken
        return (f"soak: {self.sent} session_costs at {self.rate:.0f}/s: took {self.taken} "
                f"({lost} lost, {lost / self.sent * 100:.2f} %) in {self.seconds:.1f} s; "
                f"longest standstill {self.longest_gap_s * 1000:.0f} ms as the status file "
                f"saw it (its own writes, every {self.status_interval_s * 1000:.0f} ms, are the "
                f"resolution: --probe sees inside); "
                f"{self.slow_windows} half-second windows below half the rate")


def soak(command: Sequence[str], port: int, status: Path, messages: int,
         rate: float, status_interval_s: float) -> Soak:
    """Feed `messages` session_costs at `rate` per second (each one different, so each one
    changes the view) and watch the status file (written every `status_interval_s`) for
    standstills."""
    costs = [publish_packet(BASE + "e2m/session_cost",
                            payloads.session_cost(total=100000 + 37 * i, energy_wh=20000 + i))
             for i in range(256)]
    feeder = RawMqtt(port, f"bench-soak-{os.getpid()}")
    try:
        feeder.subscribe(CHECK_TOPIC)
        status.unlink(missing_ok=True)
        with running(command) as agent:
            feeder.wait_publish(CHECK_TOPIC, b"true", timeout=30)
            while (base := _received(status, "session_cost")) < 0:
                time.sleep(0.01)
            start = time.monotonic()
            sent, chunk = 0, max(1, int(rate / 200))  # 5 ms of messages at a time
            seen: list[tuple[float, int]] = []
            while sent < messages:
                count = min(chunk, messages - sent)
                feeder.send(b"".join(costs[(sent + k) % len(costs)] for k in range(count)))
                sent += count
                ahead = start + sent / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
                if not seen or time.monotonic() - seen[-1][0] >= 0.02:
                    seen.append((time.monotonic(), _received(status, "session_cost") - base))
            # What the broker still holds for the agent reaches it: wait until the count has
            # not moved for a second or three status writes (under emulation they lag behind).
            deadline = settled_since = time.monotonic()
            deadline += 60
            while time.monotonic() < deadline:
                time.sleep(0.05)
                seen.append((time.monotonic(), _received(status, "session_cost") - base))
                if seen[-1][1] != seen[-2][1]:
                    settled_since = seen[-1][0]
                elif seen[-1][0] - settled_since >= max(1.0, 3 * status_interval_s):
                    break
            # "took" is final by construction: the agent's clean stop writes the status file
            # once more after its last decode, so it agrees with anything else the agent counted
            # by then (the probe's exit report), however late its periodic writes were.
            agent.terminate()
            code = agent.wait(timeout=60)
            if code != 0:
                raise RuntimeError(f"soak: the agent's stop ended with exit status {code}")
    finally:
        feeder.close()
    taken = _received(status, "session_cost") - base
    # After the count's last move nothing more was waiting (the final count agrees): the
    # settling wait is not a standstill.
    while len(seen) > 1 and seen[-2][1] == seen[-1][1] == taken:
        seen.pop()
    longest = 0.0
    since = seen[0]
    for at, got in seen[1:]:
        offered = min(messages, (at - start) * rate)
        if got != since[1] or got >= offered - 1:
            since = (at, got)  # progress, or nothing was waiting
        else:
            longest = max(longest, at - since[0])
    # Half-second slices of the feed in which the agent took less than half of what came.
    feed_s = messages / rate
    slow, edge = 0, start
    while edge + 0.5 <= start + feed_s:
        inside = [g for t, g in seen if edge <= t <= edge + 0.5]
        if len(inside) >= 2 and inside[-1] - inside[0] < rate * 0.25:
            slow += 1
        edge += 0.5
    return Soak(rate, messages, taken, seen[-1][0] - start, longest, slow, status_interval_s)


def probe_text(report: dict[str, Any]) -> str:
    """The probe's findings (bench/soak_probe.py) as lines for the report."""
    gc_text = ", ".join(f"gen {g}: {c['count']} (longest {c['longest_ms']:.1f} ms)"
                        for g, c in report["collections"].items())
    lines = [f"probe: {report['decodes']} decodes in {report['seconds']:.1f} s, main thread CPU "
             f"{report['cpu_seconds']:.1f} s; waited for a CPU {report['run_queue_wait_s']:.2f} s "
             f"(all threads); collections {gc_text}",
             "probe: longest gaps between two decodes, ms: wall = main thread on a CPU + "
             "waiting for one + blocked (GIL, nothing to read); collections within"]
    lines += [f"  {g['wall_ms']:6.1f} = {g['cpu_ms']:5.1f} + {g['run_queue_ms']:5.1f} + "
              f"{g['wall_ms'] - g['cpu_ms'] - g['run_queue_ms']:5.1f}; {g['collections_ms']:4.1f}"
              for g in report["gaps"]]
    return "\n".join(lines)


# ---- the report --------------------------------------------------------------------------

@dataclass
class Figures:
    """The medians of one loop's measurements and their ratios to bare python."""

    loop: str
    bare_start_ms: float
    bare_rss_kb: float
    start_ms: float
    rss_kb: float
    stop_ms: float
    idle_cpu_pct: float | None
    growth: Growth | None
    exit_statuses: list[int] = field(default_factory=list)
    web_rss_kb: float | None = None
    floor_rss_kb: float | None = None

    @property
    def ratios(self) -> dict[str, float]:
        """The figures the limits apply to."""
        out = {"rss_ratio": self.rss_kb / self.bare_rss_kb,
               "start_ratio": self.start_ms / self.bare_start_ms}
        if self.idle_cpu_pct is not None:
            out["idle_cpu_pct"] = self.idle_cpu_pct
        if self.growth is not None:
            out["growth_mb"] = self.growth.mb
        if self.web_rss_kb is not None:
            out["web_mb"] = (self.web_rss_kb - self.rss_kb) / 1024
        if self.floor_rss_kb is not None:
            out["own_mb"] = (self.rss_kb - self.floor_rss_kb) / 1024
        return out


def measure(loop: str, port: int, tmp: Path, args: argparse.Namespace, python: str) -> Figures:
    """Every measurement for one loop; the bare figures are taken interleaved with the agent's."""
    command = agent_command(agent_config(tmp, port), loop, python)
    web_port = free_port()
    with_web = agent_command(agent_config(tmp, port, web_port=web_port), loop, python)
    floor = floor_command(loop, python)
    runs, starts, rsss, floors, webs = [], [], [], [], []
    for _ in range(args.runs):
        # Interleaved, so that the machine's load at the time weighs on both sides alike.
        starts.append(bare_start_s(1, python)[0])
        rsss.append(bare_rss_kb(args.settle, python))
        floors.append(idle_rss_kb(floor, args.settle))
        runs.append(agent_run(command, port, args.settle))
        if args.web:
            webs.append(web_rss_kb(with_web, port, web_port, args.settle))
    cpu = [idle_cpu_pct(command, port, args.idle, args.settle)
           for _ in range(args.idle_runs if args.idle > 0 else 0)]
    growth = None
    if args.messages:
        fast = agent_command(agent_config(tmp, port, status_interval_s=FLOOD_STATUS_S), loop,
                             python)
        growth = rss_growth(fast, port, tmp / "status.json", args.messages)
    return Figures(loop=loop,
                   bare_start_ms=statistics.median(starts) * 1000,
                   bare_rss_kb=statistics.median(rsss),
                   start_ms=statistics.median(r.start_s for r in runs) * 1000,
                   rss_kb=statistics.median(r.rss_kb for r in runs),
                   stop_ms=statistics.median(r.stop_s for r in runs) * 1000,
                   idle_cpu_pct=statistics.median(cpu) if cpu else None, growth=growth,
                   exit_statuses=[r.exit_status for r in runs],
                   web_rss_kb=statistics.median(webs) if webs else None,
                   floor_rss_kb=statistics.median(floors))


def table(figures: Sequence[Figures]) -> str:
    """The figures and ratios as a text table, one column per loop."""
    rows: list[tuple[str, Callable[[Figures], str]]] = [
        ("bare python RSS (MiB)", lambda f: f"{f.bare_rss_kb / 1024:.1f}"),
        ("agent idle RSS (MiB)", lambda f: f"{f.rss_kb / 1024:.1f}"),
        (f"RSS ratio (<= {LIMITS['rss_ratio']:.2f})", lambda f: f"{f.ratios['rss_ratio']:.3f}"),
        ("libraries alone, RSS (MiB)",
         lambda f: "-" if f.floor_rss_kb is None else f"{f.floor_rss_kb / 1024:.1f}"),
        ("  ratio", lambda f: "-" if f.floor_rss_kb is None
         else f"{f.floor_rss_kb / f.bare_rss_kb:.3f}"),
        (f"the agent's own RSS (MiB, <= {LIMITS['own_mb']:g})",
         lambda f: "-" if f.floor_rss_kb is None else f"{f.ratios['own_mb']:.2f}"),
        ("bare python start (ms)", lambda f: f"{f.bare_start_ms:.0f}"),
        ("agent start to first check (ms)", lambda f: f"{f.start_ms:.0f}"),
        (f"start ratio (<= {LIMITS['start_ratio']:.1f})",
         lambda f: f"{f.ratios['start_ratio']:.2f}"),
        (f"idle CPU, 1 Hz heartbeats (% core, <= {LIMITS['idle_cpu_pct']})",
         lambda f: "-" if f.idle_cpu_pct is None else f"{f.idle_cpu_pct:.3f}"),
        (f"RSS growth (MB, < {LIMITS['growth_mb']:g})",
         lambda f: "-" if f.growth is None else f"{f.growth.mb:+.2f}"),
        ("  over messages sent / taken",
         lambda f: "-" if f.growth is None else f"{f.growth.sent} / {f.growth.received}"),
        (f"web output + 2 pages, RSS (MiB, < +{LIMITS['web_mb']:g})",
         lambda f: "-" if f.web_rss_kb is None else f"{f.ratios['web_mb']:+.2f}"),
        ("SIGTERM to exit (ms)", lambda f: f"{f.stop_ms:.0f}"),
        ("exit statuses", lambda f: ",".join(map(str, f.exit_statuses))),
    ]
    width = max(len(label) for label, _ in rows)
    lines = [f"{'':{width}}  " + "  ".join(f"{f.loop:>17}" for f in figures)]
    lines += [f"{label:{width}}  " + "  ".join(f"{cell(f):>17}" for f in figures)
              for label, cell in rows]
    return "\n".join(lines)


TIMED = frozenset({"start_ratio", "idle_cpu_pct"})


def failures(figures: Figures, timing: bool = True) -> list[str]:
    """The limits this loop's figures exceed (without `timing`, only those of memory)."""
    out = [f"{figures.loop}: {name} {value:.3f} exceeds {LIMITS[name]}"
           for name, value in figures.ratios.items()
           if value > LIMITS[name] and (timing or name not in TIMED)]
    if figures.growth is not None and figures.growth.received < figures.growth.sent:
        out.append(f"{figures.loop}: the agent took {figures.growth.received} of "
                   f"{figures.growth.sent} messages")
    out += [f"{figures.loop}: exit status {code}" for code in figures.exit_statuses if code]
    return out


def guest_rss_runs(runs: int, settle: float) -> int:
    """Start the agent `runs` times; print idle RSS, guest RSS and SIGTERM-to-exit of each."""
    print(f"guest RSS: {'under qemu-user' if guest_rss.under_qemu_user() else 'native'}")
    with Mosquitto() as broker, tempfile.TemporaryDirectory() as tmp:
        config = agent_config(Path(tmp), broker.port)
        for run in range(runs):
            maps = Path(tmp) / f"maps.{run}"
            command = [sys.executable, str(REPO / "bench" / "guest_rss.py"), "launch",
                       "--maps-out", str(maps), "--after", str(settle), "--", "-m", "agent",
                       "run", "--config", str(config)]
            proc = subprocess.Popen(command, stderr=subprocess.DEVNULL, cwd=REPO)
            time.sleep(settle)
            guest = guest_rss.measure(proc.pid, maps)
            rss = rss_kb(proc.pid)
            start = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=10)
            print(f"run {run}: idle RSS {rss / 1024:.1f} MiB, guest RSS {guest / 1024:.1f} MiB, "
                  f"SIGTERM to exit {(time.monotonic() - start) * 1000:.0f} ms, "
                  f"exit status {code}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table (and JSON with --json); with --check, 1 when a limit is exceeded."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="starts of each (median)")
    parser.add_argument("--settle", type=float, default=1.5, help="seconds before measuring")
    parser.add_argument("--idle", type=float, default=24.0,
                        help="idle CPU window, seconds (0: skip the measurement)")
    parser.add_argument("--idle-runs", type=int, default=3, help="idle CPU windows (median)")
    parser.add_argument("--messages", type=int, default=1_000_000,
                        help="messages of the growth measurement (0: skip it)")
    parser.add_argument("--loop", choices=("auto", "asyncio", "both"), default="auto",
                        help="auto: as installed (uvloop when present); both: auto and asyncio")
    parser.add_argument("--quick", action="store_true",
                        help="at most 3 runs, one 10 s idle window, 20000 messages (CI)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a limit is exceeded")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument("--source", action="store_true",
                        help="do not byte-compile the agent first (start compiles it each time)")
    parser.add_argument("--soak", type=int, default=0, metavar="N",
                        help="only the soak: N session_costs at --rate per second (issue 20)")
    parser.add_argument("--rate", type=float, default=10000.0, help="the soak's feed rate")
    parser.add_argument("--status-interval", type=float, default=0.05, metavar="S",
                        help="with --soak: the agent's status file is rewritten every S seconds "
                             "(the standstills' resolution; 'took' is final whatever it is)")
    parser.add_argument("--probe", action="store_true",
                        help="with --soak: the longest gaps between two decodes inside the "
                             "agent, its CPU time in them, the garbage collections "
                             "(bench/soak_probe.py)")
    parser.add_argument("--no-web", dest="web", action="store_false",
                        help="skip the RSS with a web output and two open pages")
    parser.add_argument("--env", choices=("board", "here"), default="board",
                        help="board: a venv of the agent and its runtime packages only, as the "
                             "image installs them (default); here: this environment as it is")
    parser.add_argument("--rss-only", action="store_true",
                        help="only the RSS figures (bare, libraries, agent, web): no start "
                             "timing, idle CPU or growth; seconds, and no timing in the verdict")
    parser.add_argument("--guest-rss", action="store_true",
                        help="per run: idle RSS, the agent's own mappings' RSS (qemu-user), stop")
    args = parser.parse_args(argv)
    if args.guest_rss:
        return guest_rss_runs(args.runs, args.settle)
    if args.soak:
        if not args.source:
            compile_agent()
        with Mosquitto() as broker, tempfile.TemporaryDirectory() as tmp:
            config = agent_config(Path(tmp), broker.port,
                                  status_interval_s=args.status_interval)
            probe = Path(tmp) / "probe.json"
            if args.probe:
                os.environ.update(SOAK_PROBE_PATH=str(REPO / "bench"), SOAK_PROBE_OUT=str(probe))
            command = agent_command(config, args.loop if args.loop != "both" else "auto",
                                    prelude=soak_probe.PRELUDE if args.probe else "")
            print(soak(command, broker.port, Path(tmp) / "status.json", args.soak,
                       args.rate, args.status_interval).text())
            if args.probe:
                print(probe_text(json.loads(probe.read_text())))
        return 0
    # A SIGTERM (CI timeout) unwinds, so the agent, the feeders and mosquitto are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.quick:
        args.runs, args.idle, args.idle_runs = min(args.runs, 3), min(args.idle, 10.0), 1
        args.messages = min(args.messages, 20000)
    if args.rss_only:
        args.idle, args.messages = 0, 0
    loops = ["auto", "asyncio"] if args.loop == "both" else [args.loop]
    if not args.source:
        compile_agent()
    results = []
    with Mosquitto() as broker, tempfile.TemporaryDirectory() as tmp:
        python = board_python(Path(tmp)) if args.env == "board" else sys.executable
        for loop in loops:
            results.append(measure(loop, broker.port, Path(tmp), args, python))
    print(table(results))
    if args.json:
        print(json.dumps([{"loop": f.loop, "bare_start_ms": f.bare_start_ms,
                           "bare_rss_kb": f.bare_rss_kb, "start_ms": f.start_ms,
                           "rss_kb": f.rss_kb, "stop_ms": f.stop_ms,
                           "idle_cpu_pct": f.idle_cpu_pct, **f.ratios,
                           "growth_sent": f.growth.sent if f.growth else None,
                           "growth_received": f.growth.received if f.growth else None,
                           "web_rss_kb": f.web_rss_kb, "floor_rss_kb": f.floor_rss_kb,
                           "exit_statuses": f.exit_statuses}
                          for f in results]))
    problems = [p for f in results for p in failures(f, timing=not args.rss_only)]
    for problem in problems:
        print(f"footprint: {problem}", file=sys.stderr)
    return 1 if args.check and problems else 0


if __name__ == "__main__":
    sys.exit(main())
