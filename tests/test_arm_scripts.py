"""The ARM scripts (make test-arm, make test-boot, .ci/run) are shellcheck-clean, and the boot
test's units and checks agree with what the scripts install and report."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = [ROOT / "scripts" / "arm.sh", ROOT / "scripts" / "boot.sh",
           ROOT / "scripts" / "debian.sh",
           ROOT / "scripts" / "boot" / "check.sh", ROOT / "scripts" / "boot" / "busybox-check.sh",
           ROOT / "scripts" / "boot" / "busybox-rcS", ROOT / ".ci" / "run"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shellcheck_clean(script: Path) -> None:
    tool = shutil.which("shellcheck")
    if tool is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    result = subprocess.run([tool, str(script)], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stdout


def test_boot_checks_are_documented() -> None:
    checks = {name for script in ("check.sh", "busybox-check.sh")
              for name in re.findall(r"^\s*check (\w+) ",
                                     (ROOT / "scripts/boot" / script).read_text(), re.M)}
    checks |= {f"stop_{m}" for m in re.findall(r"stop_test \S+ \S+ \S+ (\w+)",
                                                (ROOT / "scripts/boot/check.sh").read_text())}
    documented = set(re.findall(r"^\| `(\w+)` \|", (ROOT / "docs/arm.md").read_text(), re.M))
    assert checks, "no checks found"
    assert checks <= documented, checks - documented


def test_fault_instance_runs_fault_entry() -> None:
    dropin = (ROOT / "scripts/boot/cost-agent@fault.service.d/fault.conf").read_text()
    assert "ExecStart=\n" in dropin  # the template's ExecStart is reset first
    assert "fault_entry.py run --config /etc/cost-agent/fault.toml" in dropin
