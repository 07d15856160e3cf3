"""Serial display output (`type = "serial"`): a character LCD/VFD (`line`) or a Nextion HMI.

The device is opened with O_NOCTTY | O_NONBLOCK, switched to raw mode at the configured speed
and framing (stdlib termios, no pyserial), and written with `loop.add_writer` until each frame
is out; a lock keeps frames whole. A write or open failure (EIO, ENXIO, ENODEV, EBADF, a
missing device, a write stalled longer than `write_timeout_s`) raises, so the runtime counts
it, closes, and re-opens with backoff; `open()` makes the next frame a full re-sync.

A display that comes back is repainted without a view change: `watch()` (run by the worker
while idle) raises when the path now names another device (a new inode: replugged, or a
by-id symlink moved) or the open device hung up (POLLHUP/EIO); `show()` and `repaint()` check
the same before writing. `repaint()` (every `refresh_s`) re-sends the whole view, for a display
that rebooted on its own behind an unchanged device node.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import termios
from collections.abc import Callable
from typing import Annotated, Literal

import msgspec

from agent.lanes import Lane
from agent.model.view import Screen, View
from agent.outputs.base import SAMPLE_VIEW, OutputConfig, Unusable
from agent.outputs.lineproto import DEFAULT_TEMPLATE, Encoding, LineRenderer, check_template
from agent.outputs.nextion import NextionEncoder, check_fields, check_pages

_PARITY = {"none": 0, "even": termios.PARENB, "odd": termios.PARENB | termios.PARODD}
_CSIZE = {5: termios.CS5, 6: termios.CS6, 7: termios.CS7, 8: termios.CS8}


def _latin1(key: str, text: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"{key}: only characters U+0000..U+00FF (sent as bytes)") from None


class SerialConfig(OutputConfig, frozen=True, tag="serial"):
    """`[[output]] type = "serial"`; see docs/outputs.md."""

    device: Annotated[str, msgspec.Meta(min_length=1)]
    baudrate: Annotated[int, msgspec.Meta(gt=0)] = 9600
    bytesize: Literal[5, 6, 7, 8] = 8
    parity: Literal["none", "even", "odd"] = "none"
    stopbits: Literal[1, 2] = 1
    protocol: Literal["line", "nextion"] = "line"
    encoding: Encoding = "ascii"
    separator: str = "\n"
    write_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    refresh_s: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    # protocol = "line"
    template: str = DEFAULT_TEMPLATE
    width: Annotated[int, msgspec.Meta(ge=1)] | None = None
    lines: Annotated[int, msgspec.Meta(ge=1)] | None = None
    pad: bool = False
    eol: str = "\r\n"
    clear: str = ""
    # protocol = "nextion"
    fields: dict[str, str] = msgspec.field(default_factory=dict)
    pages: dict[Screen, str] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        if getattr(termios, f"B{self.baudrate}", None) is None:
            raise ValueError(f"baudrate: {self.baudrate} is not a speed this system supports")
        _latin1("eol", self.eol)
        _latin1("clear", self.clear)
        if self.protocol == "nextion":
            check_fields(self.fields)
            check_pages(self.pages)
            line_keys = {"template": self.template != DEFAULT_TEMPLATE, "width": self.width,
                         "lines": self.lines, "pad": self.pad, "eol": self.eol != "\r\n",
                         "clear": self.clear}
            for key, is_set in line_keys.items():
                if is_set:
                    raise ValueError(f"{key}: only for protocol = \"line\"")
        else:
            check_template(self.template)
            for key in ("fields", "pages"):
                if getattr(self, key):
                    raise ValueError(f"{key}: only for protocol = \"nextion\"")
            if self.pad and self.width is None and self.lines is None:
                raise ValueError("pad: needs width and/or lines")


def configure_tty(fd: int, baudrate: int, bytesize: int = 8, parity: str = "none",
                  stopbits: int = 1) -> None:
    """Raw mode (no echo, no line editing, no output processing) at this speed and framing."""
    iflag, oflag, cflag, lflag, _, _, cc = termios.tcgetattr(fd)
    iflag &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP
               | termios.INLCR | termios.IGNCR | termios.ICRNL | termios.IXON | termios.IXOFF
               | termios.IXANY | termios.INPCK)
    oflag &= ~termios.OPOST
    lflag &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    cflag &= ~(termios.CSIZE | termios.PARENB | termios.PARODD | termios.CSTOPB
               | getattr(termios, "CRTSCTS", 0))
    cflag |= _CSIZE[bytesize] | _PARITY[parity] | termios.CREAD | termios.CLOCAL
    if stopbits == 2:
        cflag |= termios.CSTOPB
    cc[termios.VMIN], cc[termios.VTIME] = 1, 0
    speed = getattr(termios, f"B{baudrate}")
    termios.tcsetattr(fd, termios.TCSANOW, [iflag, oflag, cflag, lflag, speed, speed, cc])


WATCH_INTERVAL_S = 1.0  # how often an idle output looks for a replaced device


class DeviceLost(OSError):
    """The device behind the configured path went away or was replaced."""


def _identity(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_dev, st.st_ino, st.st_rdev


class SerialPort:
    """A tty opened non-blocking; `write()` sends one whole frame without blocking the loop."""

    def __init__(self, config: SerialConfig) -> None:
        self.config = config
        self._fd: int | None = None
        self._identity: tuple[int, int, int] | None = None
        self._lock = asyncio.Lock()
        self._lane = Lane("serial")  # a stat on a slow filesystem (see check)

    @property
    def fd(self) -> int | None:
        """The open descriptor, or None when closed."""
        return self._fd

    async def check(self) -> None:
        """Raise DeviceLost when the path no longer names the device that is open."""
        path = self.config.device
        try:
            # Under /dev (devtmpfs, udev's by-id links) a stat never blocks: done inline, as the
            # idle watch does every second, it saves two thread switches a second. Elsewhere a
            # stat can wait on a slow filesystem (the path may be any symlink): in a thread.
            st = (os.stat(path) if path.startswith("/dev/")
                  else await self._lane.call(os.stat, path))
        except OSError as exc:
            raise DeviceLost(exc.errno or errno.ENODEV, f"device gone ({exc.strerror})",
                             path) from None
        if self._identity is not None and _identity(st) != self._identity:
            raise DeviceLost(errno.ENODEV, "device replaced (new device behind the path)",
                             path)

    def open(self) -> None:
        """Open and configure the device (raises OSError or termios.error)."""
        self.close()
        fd = os.open(self.config.device, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            if not os.isatty(fd):
                raise OSError(errno.ENOTTY, "not a terminal device", self.config.device)
            c = self.config
            configure_tty(fd, c.baudrate, c.bytesize, c.parity, c.stopbits)
            self._identity = _identity(os.fstat(fd))
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    async def write(self, data: bytes) -> None:
        """Write all of `data`, waiting for the device as needed; frames never interleave."""
        async with self._lock:
            try:
                # Not wait_for: on Python 3.11 it drops a cancel that comes as the write ends.
                async with asyncio.timeout(self.config.write_timeout_s):
                    await self._write_all(data)
            except TimeoutError:
                raise TimeoutError(f"{self.config.device}: write stalled for "
                                   f"{self.config.write_timeout_s} s") from None

    async def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        loop = asyncio.get_running_loop()
        while view:
            fd = self._fd
            if fd is None:
                raise OSError(errno.EBADF, "serial device is closed", self.config.device)
            try:
                view = view[os.write(fd, view):]
                continue
            except (BlockingIOError, InterruptedError):
                pass
            ready = loop.create_future()
            loop.add_writer(fd, ready.set_result, None)
            try:
                await ready
            finally:
                loop.remove_writer(fd)

    def close(self) -> None:
        """Discard unsent output and close; never raises."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError, termios.error):
            termios.tcflush(fd, termios.TCOFLUSH)  # so close() does not wait for a drain
        with contextlib.suppress(OSError):
            os.close(fd)


class SerialOutput:
    """The Output for one serial display."""

    def __init__(self, config: SerialConfig) -> None:
        self.config = config
        self.port = SerialPort(config)
        self._render: Callable[[View], bytes]
        self._nextion: NextionEncoder | None = None
        c = config
        if c.protocol == "nextion":
            self._nextion = NextionEncoder(c.fields, pages=c.pages, encoding=c.encoding,
                                           separator=c.separator)
            self._render = self._nextion.encode
        else:
            self._render = LineRenderer(
                c.template, width=c.width, lines=c.lines, encoding=c.encoding,
                eol=c.eol.encode("latin-1"), clear=c.clear.encode("latin-1"), pad=c.pad,
                separator=c.separator).frame

    def render(self, view: View) -> bytes:
        """The bytes that put this whole view on a display that shows nothing yet."""
        if self._nextion is not None:
            self._nextion.reset()
        return self._render(view)

    async def open(self) -> None:
        """Open the device; the next show() re-syncs the whole display."""
        self.port.open()
        if self._nextion is not None:
            self._nextion.reset()

    async def show(self, view: View) -> None:
        """Send the frame (line) or the changed fields (nextion) for this view."""
        await self.port.check()
        await self._send(self._render(view))

    async def repaint(self, view: View) -> None:
        """Send the whole view again: a full frame, or the page and every Nextion field."""
        await self.port.check()
        await self._send(self.render(view))

    async def watch(self) -> None:
        """Return only by raising DeviceLost: hang-up, or another device behind the path."""
        fd = self.port.fd
        if fd is None:
            raise DeviceLost(errno.EBADF, "serial device is closed", self.config.device)
        loop = asyncio.get_running_loop()
        hangup: asyncio.Future[OSError] = loop.create_future()

        def readable() -> None:
            # The agent never reads the display; draining its replies also notices a hang-up.
            try:
                if os.read(fd, 4096):
                    return
                error = DeviceLost(errno.EIO, "device hung up", self.config.device)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                error = DeviceLost(exc.errno or errno.EIO, f"device hung up ({exc.strerror})",
                                   self.config.device)
            if not hangup.done():
                hangup.set_result(error)
                loop.remove_reader(fd)

        loop.add_reader(fd, readable)
        try:
            while True:
                await asyncio.wait([hangup], timeout=WATCH_INTERVAL_S)
                if hangup.done():
                    raise hangup.result()
                await self.port.check()
        finally:
            loop.remove_reader(fd)
            hangup.cancel()

    async def _send(self, data: bytes) -> None:
        if not data:
            return
        try:
            await self.port.write(data)
        except BaseException:
            # The display may hold a partial frame: re-sync everything after the re-open.
            if self._nextion is not None:
                self._nextion.reset()
            raise

    async def close(self) -> None:
        """Release the device."""
        self.port.close()


CONFIG = SerialConfig


def preflight(config: OutputConfig) -> None:
    """The template (or Nextion fields) renders a view with every field set."""
    assert isinstance(config, SerialConfig)
    try:
        create(config).render(SAMPLE_VIEW)
    except Exception as exc:  # any template error is a config error, never a traceback
        raise Unusable("fields" if config.protocol == "nextion" else "template",
                       f"{type(exc).__name__}: {exc}") from None


def create(config: SerialConfig) -> SerialOutput:
    """Build the output from its validated config."""
    return SerialOutput(config)
