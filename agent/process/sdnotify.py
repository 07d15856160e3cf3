"""sd_notify(3) without libsystemd: datagrams to $NOTIFY_SOCKET."""

from __future__ import annotations

import os
import socket


class Notifier:
    """Sends READY/STATUS/WATCHDOG/STOPPING to systemd; silent when not under systemd."""

    def __init__(self) -> None:
        self._addr = os.environ.get("NOTIFY_SOCKET", "")
        self._sock: socket.socket | None = None
        if self._addr:
            if self._addr.startswith("@"):
                self._addr = "\0" + self._addr[1:]
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.setblocking(False)

    @staticmethod
    def watchdog_interval() -> float | None:
        """Seconds between WATCHDOG=1 pings (a third of WatchdogSec), or None when unset."""
        usec = os.environ.get("WATCHDOG_USEC", "")
        pid = os.environ.get("WATCHDOG_PID", "")
        if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
            return None
        return int(usec) / 1_000_000 / 3

    def send(self, **fields: str) -> bool:
        """Send `KEY=value` lines; False when there is no socket or the send failed."""
        if self._sock is None:
            return False
        payload = "\n".join(f"{k}={v}" for k, v in fields.items()).encode()
        try:
            self._sock.sendto(payload, self._addr)
        except OSError:
            return False
        return True

    def close(self) -> None:
        """Release the socket."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
