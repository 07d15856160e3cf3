"""`file` output: what a writer killed mid-write leaves beside the file is cleaned at start."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from agent.model.view import View
from agent.outputs.file import FileConfig, FileOutput

REPO = Path(__file__).resolve().parent.parent

# A writer killed with SIGKILL between creating its temp file and renaming it (a kill -9 or a
# power cut during write_atomic): it creates the temp exactly as write_atomic does, then dies.
KILLED_WRITER = """
import os, signal, sys
from agent.atomic import _create_temp
fd, tmp = _create_temp(sys.argv[1])
os.write(fd, b'{"screen": "pri')
print(tmp, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def killed_write(target: Path) -> Path:
    result = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(target)], cwd=REPO,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == -signal.SIGKILL
    return Path(result.stdout.strip())


def test_temp_files_of_a_killed_writer_are_removed_when_the_output_opens(tmp_path: Path) -> None:
    target = tmp_path / "display.json"
    leftovers = [killed_write(target), killed_write(target)]
    assert all(p.exists() for p in leftovers)
    # Not ours to touch: another file's temp, a live process's temp, a file of another name.
    others = [killed_write(tmp_path / "other.json"),
              tmp_path / f".display.json.{os.getppid()}-0.tmp",
              tmp_path / ".display.json.tmp", tmp_path / "notes.tmp"]
    for other in others[1:]:
        other.write_bytes(b"x")

    async def scenario() -> None:
        out = FileOutput(FileConfig(path=str(target)))
        await out.open()
        await out.show(View(screen="price", link="up", message="hello"))
        await out.close()
    asyncio.run(scenario())
    assert not any(p.exists() for p in leftovers)
    assert all(p.exists() for p in others)
    assert json.loads(target.read_bytes())["message"] == "hello"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["display.json", *(p.name for p in others)])
