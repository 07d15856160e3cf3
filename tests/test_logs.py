"""agent.process.logs.setup(): journald priority prefixes under systemd, timestamps otherwise.

Each case runs a child Python whose stderr is a real file, so the
JOURNAL_STREAM check (stderr's st_dev:st_ino) sees what it would under systemd.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Child program: optionally points JOURNAL_STREAM at its own stderr (argv[1]
# == "match"), at some other file ("other"), or leaves it unset ("unset"),
# then logs one record per level and a multi-line message.
CHILD = r"""
import logging, os, sys
mode = sys.argv[1]
st = os.fstat(sys.stderr.fileno())
if mode == "match":
    os.environ["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
elif mode == "other":
    os.environ["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino + 1}"
else:
    os.environ.pop("JOURNAL_STREAM", None)
from agent.process import logs
logs.setup("debug")
log = logging.getLogger("cost-agent.test")
log.debug("dbg")
log.info("inf")
log.warning("wrn")
log.error("err")
log.critical("crt")
log.info("two\nlines")
"""

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d ")


def run_child(mode: str, tmp_path: Path) -> list[str]:
    """Run CHILD with stderr redirected to a file; return its lines."""
    err = tmp_path / "stderr.txt"
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    env["PYTHONPATH"] = str(ROOT)
    with err.open("wb") as fh:
        subprocess.run([sys.executable, "-c", CHILD, mode], cwd=ROOT, env=env,
                       stdout=subprocess.DEVNULL, stderr=fh, check=True, timeout=60)
    return err.read_text(encoding="utf-8").splitlines()


def test_journal_stream_matching_stderr_gives_priority_prefixes(tmp_path: Path) -> None:
    lines = run_child("match", tmp_path)
    assert lines == [
        "<7>cost-agent.test: dbg",
        "<6>cost-agent.test: inf",
        "<4>cost-agent.test: wrn",
        "<3>cost-agent.test: err",
        "<2>cost-agent.test: crt",
        "<6>cost-agent.test: two | lines",
    ]
    assert not any(TIMESTAMP.search(line) for line in lines)


@pytest.mark.parametrize("mode", ["unset", "other"])
def test_plain_stderr_gives_timestamped_lines(mode: str, tmp_path: Path) -> None:
    lines = run_child(mode, tmp_path)
    assert len(lines) == 6
    for line in lines:
        assert TIMESTAMP.match(line), line
        assert not line.startswith("<")
    levels = [line.split(" ")[1] for line in lines]
    assert levels == ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "INFO"]
    assert lines[0].endswith(" cost-agent.test: dbg")
    assert lines[-1].endswith(" cost-agent.test: two | lines")


# Logs far more than a pipe holds while nobody reads the pipe, then reports on stdout.
STALL_CHILD = r"""
import logging, sys
from agent.process import logs
logs.setup("info")
log = logging.getLogger("agent.test")
for i in range(20000):
    log.info("record %d", i)
try:
    raise ValueError("first\nsecond")
except ValueError:
    log.exception("folded")
print(logs.dropped(), flush=True)
"""


def test_stalled_stderr_never_blocks_and_drops_are_counted() -> None:
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    env["PYTHONPATH"] = str(ROOT)
    child = subprocess.Popen([sys.executable, "-c", STALL_CHILD], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stderr is not None
        # Nobody reads stderr yet: a logger writing synchronously would block forever here.
        ready, _, _ = select.select([child.stdout], [], [], 60)
        assert ready, "the child blocked on its stalled stderr"
        dropped = int(child.stdout.readline())
        assert dropped > 0
        err = child.stderr.read().decode()
        assert child.wait(30) == 0
    finally:
        child.kill()
        child.wait()
    lines = err.splitlines()
    records = [line for line in lines if " agent.test: " in line]
    assert 0 < len(records) <= 20001 - dropped  # 20000 records and the exception
    assert all(TIMESTAMP.match(line) for line in lines), lines[:3]
    assert any(f"agent.process.logs: {n} log records dropped" in err for n in range(1, dropped + 1))
    folded = [line for line in lines if "folded" in line]
    if folded:  # the traceback may have been dropped too; when written it is one line
        assert "Traceback" in folded[0] and "first | second" in folded[0]


def test_exception_is_one_line(tmp_path: Path) -> None:
    err = tmp_path / "stderr.txt"
    code = ("import logging\nfrom agent.process import logs\nlogs.setup('info')\n"
            "try:\n    1 / 0\nexcept ZeroDivisionError:\n"
            "    logging.getLogger('agent.x').exception('failed\\nbadly')\n")
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    env["PYTHONPATH"] = str(ROOT)
    with err.open("wb") as fh:
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, stderr=fh, check=True,
                       timeout=60)
    lines = err.read_text().splitlines()
    assert len(lines) == 1
    assert "agent.x: failed | badly | Traceback" in lines[0]
    assert lines[0].endswith("ZeroDivisionError: division by zero")
