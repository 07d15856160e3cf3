"""Exec hook output with real subprocesses: stdin, environment, failures, timeouts, cancel."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from agent.model.view import Total, View, encode_view
from agent.outputs import exec as exec_output
from agent.outputs.exec import ExecConfig, ExecFailed

VIEW = View(screen="charging", link="up", session_id="s-1", status="Running",
            total=Total(1234, 2, "EUR", "12,34 €"), message="Merci ! Bonne route")


def cfg(**keys: Any) -> ExecConfig:
    return msgspec.convert({"type": "exec", **keys}, ExecConfig)


def script(tmp_path: Path, body: str, name: str = "hook") -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def run(config: ExecConfig, view: View = VIEW, loop: str = "asyncio") -> None:
    async def main() -> None:
        out = exec_output.create(config)
        await out.open()
        try:
            await out.show(view)
        finally:
            await out.close()
    if loop == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        uvloop.run(main())
    else:
        asyncio.run(main())


def gone(pid: int) -> bool:
    """The process no longer runs (reaped, or a zombie waiting for a reaper).

    SIGKILL is delivered asynchronously: a killed process may still show as running for a
    moment on a loaded machine, so this waits up to 5 s for it to die.
    """
    for _ in range(500):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            return True
        if "\nState:\tZ" in status:
            return True
        time.sleep(0.01)
    return False


def test_view_on_stdin_and_minimal_environment(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COST_AGENT_TEST_SECRET", "leak")
    hook = script(tmp_path, 'cat > "$1/view.json"\nenv > "$1/env"\necho "$@" > "$1/args"\n')
    run(cfg(argv=[hook, str(tmp_path), "--fast"]))
    assert (tmp_path / "view.json").read_bytes() == encode_view(VIEW)
    assert (tmp_path / "args").read_text() == f"{tmp_path} --fast\n"
    env = dict(line.split("=", 1) for line in (tmp_path / "env").read_text().splitlines())
    assert env["PATH"] == "/usr/sbin:/usr/bin:/sbin:/bin"
    assert env["LANG"] == "C.UTF-8"
    assert env["COST_SCREEN"] == "charging"
    assert env["COST_TOTAL"] == "12,34 €"
    assert env["COST_MESSAGE"] == "Merci ! Bonne route"
    # Nothing inherited (the shell itself may add PWD, SHLVL, _).
    assert set(env) - {"PWD", "SHLVL", "_", "OLDPWD"} == {
        "PATH", "LANG", "COST_SCREEN", "COST_TOTAL", "COST_MESSAGE"}


def test_absent_values_are_empty_and_bare_program_uses_path(tmp_path: Path) -> None:
    out = tmp_path / "env"
    run(cfg(argv=["sh", "-c", f'printf "%s|%s|%s" "$COST_SCREEN" "$COST_TOTAL" '
                              f'"$COST_MESSAGE" > {out}']),
        View(screen="idle", link="down"))
    assert out.read_text() == "idle||"


def test_no_shell_interpretation_of_arguments(tmp_path: Path) -> None:
    hook = script(tmp_path, 'printf "%s\\n" "$@" > "$1/args"\n')
    run(cfg(argv=[hook, str(tmp_path), "$(touch pwned)", "a;b", "*"]))
    assert (tmp_path / "args").read_text().splitlines()[1:] == ["$(touch pwned)", "a;b", "*"]
    assert not (tmp_path / "pwned").exists()


def test_non_zero_exit_raises_with_first_stderr_line(tmp_path: Path) -> None:
    hook = script(tmp_path, "echo '' >&2\necho 'display not found' >&2\necho more >&2\nexit 3\n")
    with pytest.raises(ExecFailed) as err:
        run(cfg(argv=[hook]))
    assert str(err.value) == f"{hook} exited with status 3: display not found"


def test_no_stderr(tmp_path: Path) -> None:
    with pytest.raises(ExecFailed, match=r"exited with status 1: \(no stderr\)"):
        run(cfg(argv=[script(tmp_path, "exit 1\n")]))


def test_death_by_signal(tmp_path: Path) -> None:
    with pytest.raises(ExecFailed, match="was killed by SIGTERM: dying"):
        run(cfg(argv=[script(tmp_path, "echo dying >&2\nkill -TERM $$\n")]))


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    hook = script(tmp_path, 'echo "waiting for display" >&2\nsleep 60 &\necho $! > "$1/child"\n'
                            'echo $$ > "$1/shell"\nwait\n')
    with pytest.raises(ExecFailed) as err:
        run(cfg(argv=[hook, str(tmp_path)], timeout_s=0.5))
    assert str(err.value) == f"{hook} timed out after 0.5 s and was killed: waiting for display"
    assert gone(int((tmp_path / "child").read_text()))
    assert gone(int((tmp_path / "shell").read_text()))


# Issue 26: the run ends when the hook exits, not when its stderr closes; a child it leaves in
# the background keeps running and may hold stderr (and stdin) open for as long as it lives.
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_hook_that_leaves_a_child_behind_ends_at_its_own_exit(tmp_path: Path,
                                                                loop: str) -> None:
    hook = script(tmp_path, 'echo "updated" >&2\nsleep 60 &\necho $! > "$1/child"\nexit 0\n')
    big = msgspec.structs.replace(VIEW, prices=["x" * 1000] * 1000)  # more than a pipe holds
    run(cfg(argv=[hook, str(tmp_path)], timeout_s=30), big, loop)  # not "timed out"
    child = int((tmp_path / "child").read_text())
    assert not gone_now(child)  # left alone: the hook's business
    os.kill(child, 9)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_failing_hook_that_leaves_a_child_behind_is_reported_with_its_stderr(
        tmp_path: Path, loop: str) -> None:
    hook = script(tmp_path, 'echo "panel busy" >&2\nsleep 60 &\necho $! > "$1/child"\nexit 4\n')
    with pytest.raises(ExecFailed) as err:
        run(cfg(argv=[hook, str(tmp_path)], timeout_s=30), VIEW, loop)
    assert str(err.value) == f"{hook} exited with status 4: panel busy"
    os.kill(int((tmp_path / "child").read_text()), 9)


def gone_now(pid: int) -> bool:
    """The process has ended (no waiting: for one that should still run)."""
    try:
        return "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True


def test_hook_that_ignores_stdin(tmp_path: Path) -> None:
    big = msgspec.structs.replace(VIEW, prices=["x" * 1000] * 1000)
    run(cfg(argv=[script(tmp_path, "exit 0\n")]), big)  # no BrokenPipeError


def test_long_message_is_cut_in_the_environment_only(tmp_path: Path) -> None:
    hook = script(tmp_path, 'cat > "$1/view.json"\nprintf %s "$COST_MESSAGE" > "$1/msg"\n')
    long = msgspec.structs.replace(VIEW, message="y" * 500_000)
    run(cfg(argv=[hook, str(tmp_path)]), long)
    assert (tmp_path / "msg").read_text() == "y" * 4096
    assert (tmp_path / "view.json").read_bytes() == encode_view(long)


def test_cancelled_run_is_killed_and_reaped(tmp_path: Path) -> None:
    hook = script(tmp_path, 'echo $$ > "$1/ready"\nsleep 300\n')  # > pytest timeout
    os.mkfifo(tmp_path / "ready")

    async def main() -> int:
        out = exec_output.create(cfg(argv=[hook, str(tmp_path)], timeout_s=60))
        task = asyncio.create_task(out.show(VIEW))
        pid = int(await asyncio.to_thread((tmp_path / "ready").read_text))  # hook is running
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return pid
    assert gone(asyncio.run(main()))


def test_runs_are_sequential_and_each_sees_its_view(tmp_path: Path) -> None:
    hook = script(tmp_path, 'echo "$COST_SCREEN" >> "$1/log"\n')

    async def main() -> None:
        out = exec_output.create(cfg(argv=[hook, str(tmp_path)]))
        await out.open()
        for screen in ("price", "charging", "finished"):
            await out.show(View(screen=screen, link="up"))
        await out.close()
    asyncio.run(main())
    assert (tmp_path / "log").read_text() == "price\ncharging\nfinished\n"


def test_open_reports_a_missing_program(tmp_path: Path) -> None:
    with pytest.raises(ExecFailed, match="missing or not executable"):
        run(cfg(argv=[str(tmp_path / "nope")]))


@pytest.mark.parametrize(("keys", "needle"), [
    ({}, "missing required field `argv`"),
    ({"argv": []}, "$.argv"),
    ({"argv": [""]}, "argv: the program"),
    ({"argv": "/bin/true"}, "$.argv"),
    ({"argv": ["/bin/true", "a\0b"]}, "argv[1]: contains a NUL"),
    ({"argv": ["/bin/true"], "timeout_s": 0}, "$.timeout_s"),
    ({"argv": ["/bin/true"], "shell": True}, "unknown field `shell`"),
])
def test_config_errors_name_the_key(keys: dict[str, Any], needle: str) -> None:
    with pytest.raises(msgspec.ValidationError) as err:
        cfg(**keys)
    assert needle in str(err.value)


def test_defaults_and_module_interface() -> None:
    c = cfg(argv=["/usr/libexec/update-display", "--fast"])
    assert c.timeout_s == 5.0
    assert exec_output.CONFIG is ExecConfig
    assert os.environ.get("COST_SCREEN") is None


def test_failing_hook_backs_off_exponentially(tmp_path: Path) -> None:
    """Through the output worker: 0.1 s doubling up to retry_max_s (30 s for exec by default),
    so a hook that always fails runs about 6 times in 4 s, not 2.4 times a second."""
    from agent.process.workers import OutputWorker
    from tests.tasks import running

    runs = tmp_path / "runs"
    config = cfg(argv=[script(tmp_path, f"echo run >> {runs}\necho broken >&2\nexit 1\n")])
    assert config.retry_max_s == 30

    async def main() -> int:
        worker = OutputWorker.for_config("hook", exec_output.create(config), config)
        async with running(worker):
            worker.submit(VIEW)
            await asyncio.sleep(4.0)
            # A run may be under way at 4 s (it logs its start, counts at its end): the next
            # one is >= 3.2 s of backoff away, so both figures settle before it.
            for _ in range(200):
                if worker.stats.failed == len(runs.read_text().splitlines()):
                    break
                await asyncio.sleep(0.05)
        assert worker.stats.last_error is not None and "broken" in worker.stats.last_error
        return worker.stats.failed
    failed = asyncio.run(main())
    count = len(runs.read_text().splitlines())
    assert failed == count
    assert 3 <= count <= 6, count  # 2.4/s would be ~10; a slow machine only runs fewer
