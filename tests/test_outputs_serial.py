"""Serial output on real pseudo-terminals: bytes on the master, termios, disappearance, config."""

from __future__ import annotations

import asyncio
import os
import select
import subprocess
import sys
import termios
from pathlib import Path
from typing import Any

import msgspec
import pytest

from agent.dev.pty import PtyTap
from agent.model.view import Total, View
from agent.outputs import serial
from agent.outputs.serial import SerialConfig, SerialOutput

FF = b"\xff\xff\xff"


def cfg(**keys: Any) -> SerialConfig:
    return msgspec.convert({"type": "serial", **keys}, SerialConfig)


def view(screen: str = "charging", total: str | None = "1,23 €", message: str | None = None,
         ) -> View:
    t = Total(123, 2, "EUR", total) if total is not None else None
    return View(screen=screen, link="up", total=t, message=message)  # type: ignore[arg-type]


def read_exact(fd: int, n: int) -> bytes:
    """Read n bytes from a pty master (the kernel may deliver them a little later)."""
    data = b""
    while len(data) < n:
        ready, _, _ = select.select([fd], [], [], 10)
        assert ready, f"only {data!r} arrived"
        data += os.read(fd, n - len(data))
    return data


def test_line_frames_byte_for_byte_and_raw_mode() -> None:
    async def main() -> None:
        master, slave = os.openpty()
        out = serial.create(cfg(device=os.ttyname(slave), baudrate=19200, bytesize=7,
                                parity="even", stopbits=2, clear="\x0c", eol="\n",
                                template="{screen}\n{total}"))
        await out.open()
        await out.show(view())
        await out.show(view("finished", "2,00 €"))
        expected = b"\x0ccharging\n1,23 EUR\n" + b"\x0cfinished\n2,00 EUR\n"
        assert read_exact(master, len(expected)) == expected
        iflag, oflag, cflag, lflag, ispeed, ospeed, _cc = termios.tcgetattr(slave)
        assert not lflag & (termios.ICANON | termios.ECHO | termios.ISIG)
        assert not oflag & termios.OPOST
        assert not iflag & (termios.ICRNL | termios.IXON)
        # A pty forces CS8 without parity; the framing bits are checked in the next test.
        assert cflag & termios.CSTOPB and cflag & termios.CLOCAL
        assert ispeed == ospeed == termios.B19200
        await out.close()
        os.close(master)
        os.close(slave)
    asyncio.run(main())


@pytest.mark.parametrize(("bytesize", "parity", "stopbits", "bits"), [
    (8, "none", 1, termios.CS8),
    (7, "even", 1, termios.CS7 | termios.PARENB),
    (7, "odd", 2, termios.CS7 | termios.PARENB | termios.PARODD | termios.CSTOPB),
    (5, "none", 2, termios.CS5 | termios.CSTOPB),
])
def test_framing_bits(monkeypatch: pytest.MonkeyPatch, bytesize: int, parity: str,
                      stopbits: int, bits: int) -> None:
    applied: list[list[Any]] = []
    monkeypatch.setattr(termios, "tcsetattr", lambda fd, when, attrs: applied.append(attrs))
    master, slave = os.openpty()
    try:
        serial.configure_tty(slave, 4800, bytesize, parity, stopbits)
    finally:
        os.close(master)
        os.close(slave)
    cflag = applied[0][2]
    mask = termios.CSIZE | termios.PARENB | termios.PARODD | termios.CSTOPB | termios.CRTSCTS
    assert cflag & mask == bits
    assert applied[0][4] == applied[0][5] == termios.B4800


def test_nextion_over_pty_sends_only_changes() -> None:
    async def main() -> None:
        tap = PtyTap()
        out = serial.create(tap.config(protocol="nextion", baudrate=115200,
                                       fields={"total": "t0", "message": "t1"}))
        await out.open()
        await out.show(view(message="Hi"))
        await out.show(view(message="Hi"))  # nothing changed: nothing sent
        await out.show(view(total='3 "€"', message="Hi"))
        expected = (b't0.txt="1,23 EUR"' + FF + b't1.txt="Hi"' + FF
                    + b't0.txt="3 \\"EUR\\""' + FF)
        assert read_exact(tap.master, len(expected)) == expected
        await out.close()
        tap.close()
    asyncio.run(main())


def test_device_disappears_and_returns(tmp_path: Path) -> None:
    """A symlink to a pty that goes away; the runtime's close/open cycle; a new pty appears."""
    link = tmp_path / "ttyDISPLAY"

    def new_pty() -> tuple[int, int]:
        master, slave = os.openpty()
        tmp = tmp_path / "link.tmp"
        tmp.symlink_to(os.ttyname(slave))
        tmp.replace(link)  # atomic move, as udev does
        return master, slave

    async def main() -> None:
        master, slave = new_pty()
        for protocol in ("line", "nextion"):
            keys: dict[str, Any] = ({"fields": {"screen": "t0", "total": "t1"}}
                                    if protocol == "nextion" else {"template": "{screen}"})
            out = serial.create(cfg(device=str(link), protocol=protocol, **keys))
            await out.open()
            await out.show(view())
            first = (b't0.txt="charging"' + FF + b't1.txt="1,23 EUR"' + FF
                     if protocol == "nextion" else b"charging\r\n")
            assert read_exact(master, len(first)) == first

            os.close(master)  # the display goes away
            os.close(slave)
            link.unlink()
            with pytest.raises(OSError):
                await out.show(view("finished"))
            await out.close()
            with pytest.raises(FileNotFoundError):
                await out.open()

            master, slave = new_pty()  # it comes back, at another pty
            await out.open()
            await out.show(view("finished"))
            # Full re-sync: every field, not just the one that changed.
            again = (b't0.txt="finished"' + FF + b't1.txt="1,23 EUR"' + FF
                     if protocol == "nextion" else b"finished\r\n")
            assert read_exact(master, len(again)) == again
            await out.close()
        os.close(master)
        os.close(slave)
    asyncio.run(main())


def test_concurrent_large_frames_never_interleave() -> None:
    async def main() -> None:
        tap = PtyTap()
        out = serial.create(tap.config(template="{message}", eol="\n"))
        await out.open()
        a, b = "A" * 200_000, "B" * 200_000
        received = bytearray()
        done = asyncio.get_running_loop().create_future()

        def got(data: bytes) -> None:
            received.extend(data)
            if len(received) >= 400_002 and not done.done():
                done.set_result(None)
        tap.watch(got)
        await asyncio.gather(out.show(view(message=a)), out.show(view(message=b)))
        await done
        assert bytes(received) in ((a + "\n" + b + "\n").encode(), (b + "\n" + a + "\n").encode())
        await out.close()
        tap.close()
    asyncio.run(main())


def test_stalled_write_raises_and_close_does_not_hang() -> None:
    async def main() -> None:
        tap = PtyTap()  # nobody reads the master: the pty buffer fills up
        out = serial.create(tap.config(template="{message}", write_timeout_s=0.2))
        await out.open()
        with pytest.raises(TimeoutError, match="write stalled"):
            await out.show(view(message="x" * 1_000_000))
        await out.close()
        tap.close()
    asyncio.run(main())


def test_missing_device_and_non_tty_raise(tmp_path: Path) -> None:
    async def main() -> None:
        with pytest.raises(FileNotFoundError):
            await serial.create(cfg(device=str(tmp_path / "nope"))).open()
        plain = tmp_path / "plain"
        plain.write_bytes(b"")
        with pytest.raises(OSError, match="not a terminal"):
            await serial.create(cfg(device=str(plain))).open()
        out = serial.create(cfg(device=str(plain)))
        with pytest.raises(OSError, match="closed"):
            await out.show(view())  # show before open
    asyncio.run(main())


def test_open_does_not_acquire_a_controlling_terminal() -> None:
    """A session leader opening a tty without O_NOCTTY would make it its controlling tty."""
    master, slave = os.openpty()
    code = (
        "import asyncio, errno, os, sys\n"
        "from agent.outputs import serial\n"
        "import msgspec\n"
        "c = msgspec.convert({'type': 'serial', 'device': sys.argv[1]}, serial.SerialConfig)\n"
        "out = serial.create(c)\n"
        "asyncio.run(out.open())\n"
        "try:\n"
        "    os.open('/dev/tty', os.O_RDWR)\n"
        "except OSError as e:\n"
        "    sys.exit(0 if e.errno == errno.ENXIO else 3)\n"
        "sys.exit(4)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", code, os.ttyname(slave)], env=env,
                          start_new_session=True, stdin=subprocess.DEVNULL, check=False,
                          capture_output=True, timeout=60)
    os.close(master)
    os.close(slave)
    assert proc.returncode == 0, proc.stderr.decode()


def test_pty_tap_watch_delivers_bytes() -> None:
    async def main() -> None:
        tap = PtyTap()
        received = bytearray()
        done = asyncio.get_running_loop().create_future()

        def got(data: bytes) -> None:
            received.extend(data)
            if received.endswith(b"\r\n") and not done.done():
                done.set_result(None)
        tap.watch(got)
        out = serial.create(tap.config(width=20, lines=4))
        await out.open()
        await out.show(view(message="Thank you"))
        await done
        assert bytes(received) == b"charging 1,23 EUR\r\nThank you\r\n"
        await out.close()
        tap.close()
    asyncio.run(main())


def test_module_interface() -> None:
    assert serial.CONFIG is SerialConfig
    assert isinstance(serial.create(cfg(device="/dev/null")), SerialOutput)


@pytest.mark.parametrize(("keys", "needle"), [
    ({}, "Object missing required field `device`"),
    ({"device": "/d", "speed": 9600}, "unknown field `speed`"),
    ({"device": "/d", "baudrate": 12345}, "baudrate: 12345"),
    ({"device": "/d", "bytesize": 9}, "$.bytesize"),
    ({"device": "/d", "parity": "mark"}, "$.parity"),
    ({"device": "/d", "stopbits": 3}, "$.stopbits"),
    ({"device": "/d", "protocol": "vt100"}, "$.protocol"),
    ({"device": "/d", "encoding": "koi8-r"}, "$.encoding"),
    ({"device": "/d", "width": 0}, "$.width"),
    ({"device": "/d", "template": "{totl}"}, "unknown placeholder {totl}"),
    ({"device": "/d", "eol": "\u2028"}, "eol: only characters"),
    ({"device": "/d", "pad": True}, "pad: needs width"),
    ({"device": "/d", "fields": {"total": "t0"}}, "fields: only for protocol = \"nextion\""),
    ({"device": "/d", "protocol": "nextion"}, "fields: map at least one"),
    ({"device": "/d", "protocol": "nextion", "fields": {"total": "t0"}, "width": 20},
     "width: only for protocol = \"line\""),
    ({"device": "/d", "protocol": "nextion", "fields": {"total": "t0"},
      "pages": {"charge": "p1"}}, "$.pages"),
    ({"device": "/d", "write_timeout_s": 0}, "$.write_timeout_s"),
])
def test_config_errors_name_the_key(keys: dict[str, Any], needle: str) -> None:
    with pytest.raises(msgspec.ValidationError) as err:
        cfg(**keys)
    assert needle in str(err.value)


def test_config_defaults() -> None:
    c = cfg(device="/dev/ttyS1")
    assert (c.baudrate, c.bytesize, c.parity, c.stopbits, c.protocol, c.encoding, c.eol) == \
        (9600, 8, "none", 1, "line", "ascii", "\r\n")
    assert c.retry_max_s == 0.5


def test_repaint_resends_the_whole_view() -> None:
    async def main() -> None:
        for keys, full in (
                ({"template": "{screen}\n{total}", "clear": "\x0c"},
                 b"\x0ccharging\r\n1,23 EUR\r\n"),
                ({"protocol": "nextion", "fields": {"screen": "t0", "total": "t1"},
                  "pages": {"charging": "charge"}},
                 b"page charge" + FF + b't0.txt="charging"' + FF + b't1.txt="1,23 EUR"' + FF)):
            tap = PtyTap()
            out = serial.create(tap.config(**keys))
            await out.open()
            await out.show(view())
            assert read_exact(tap.master, len(full)) == full
            await out.repaint(view())  # same view: a display that rebooted gets all of it
            assert read_exact(tap.master, len(full)) == full
            await out.close()
            tap.close()
    asyncio.run(main())


def test_watch_raises_on_hangup_and_on_a_replaced_device(tmp_path: Path) -> None:
    async def main() -> None:
        master, slave = os.openpty()
        out = serial.create(cfg(device=os.ttyname(slave)))
        await out.open()
        os.close(master)  # the display hangs up
        with pytest.raises(OSError, match="hung up"):
            await asyncio.wait_for(out.watch(), 10)
        await out.close()
        os.close(slave)

        link = tmp_path / "ttyDISPLAY"
        first, second = PtyTap(), PtyTap()
        link.symlink_to(first.path)
        out = serial.create(cfg(device=str(link)))
        await out.open()
        (tmp_path / "new").symlink_to(second.path)
        (tmp_path / "new").replace(link)
        with pytest.raises(OSError, match="replaced"):
            await asyncio.wait_for(out.watch(), 10)
        with pytest.raises(OSError, match="replaced"):
            await out.show(view())  # nothing goes to the old device
        assert first.read() == b""
        await out.close()
        first.close()
        second.close()
    asyncio.run(main())
