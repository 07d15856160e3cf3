"""A private mosquitto on a free loopback port, for the demo and the integration tests."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class BrokerError(RuntimeError):
    """mosquitto is missing or did not start."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_mosquitto() -> str | None:
    """Path of the mosquitto binary (Debian puts it in /usr/sbin, often not on PATH)."""
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()),
        None)


class Mosquitto:
    """One mosquitto process bound to 127.0.0.1:port; stop() and start() keep the port."""

    def __init__(self, port: int | None = None) -> None:
        binary = find_mosquitto()
        if binary is None:
            raise BrokerError("mosquitto not found: run `make setup` (installs it with apt-get)")
        self.binary = binary
        self.port = port or free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="cost-agent-mosquitto-")
        self.conf = Path(self._dir.name) / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                             "persistence false\nlog_dest stderr\nlog_type error\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def require_passwords(self, directory: Path, users: dict[str, str]) -> Mosquitto:
        """Let in only these users (name: password); call before start()."""
        passwords = directory / "mosquitto.passwd"
        passwords.touch(mode=0o600)
        for user, password in users.items():
            subprocess.run(["mosquitto_passwd", "-b", str(passwords), user, password],
                           check=True, capture_output=True, timeout=30)
        # `user root`: as root, mosquitto would drop to a user who cannot read the file.
        self.conf.write_text(self.conf.read_text().replace(
            "allow_anonymous true",
            f"allow_anonymous false\npassword_file {passwords}\nuser root"))
        return self

    def start(self, timeout: float = 10.0) -> Mosquitto:
        """Start the broker and wait until it accepts connections."""
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise BrokerError(f"mosquitto exited: {err.strip()[:300]}")
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=0.2):
                return self
            time.sleep(0.05)
        self.stop()
        raise BrokerError(f"mosquitto did not listen on port {self.port}")

    def stop(self) -> None:
        """Kill the broker (as a crash would) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc = None

    def close(self) -> None:
        """Stop and remove the temporary config."""
        self.stop()
        self._dir.cleanup()

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
