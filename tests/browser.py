"""Debian's chromium driven by selenium (installed by `make setup`), for the web display's tests.

An EventSource stream never lets `chromium --dump-dom` finish, so the page is driven. Every
call into the browser runs in a thread: the test's event loop keeps sending EVerest's heartbeats.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import EMULATED

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if EMULATED:
        return "no browser in the ARM userland (the web page is tested natively)"
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        return "chromium and chromium-driver are not installed (`make setup` installs them)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (dev extras)"
    return None


class Browser:
    """One headless chromium at a given window size."""

    def __init__(self) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.profile = tempfile.mkdtemp(prefix="cost-agent-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-quic", "--hide-scrollbars",
                    "--disable-dev-shm-usage", f"--user-data-dir={self.profile}"):
            options.add_argument(arg)
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)

    def size(self, width: int, height: int) -> None:
        """The page's viewport is exactly width x height CSS pixels."""
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    async def open(self, url: str) -> None:
        """Load `url`."""
        await asyncio.to_thread(self.driver.get, url)

    async def js(self, script: str, *args: Any) -> Any:
        """Run `script` (a function body) in the page; its return value."""
        return await asyncio.to_thread(self.driver.execute_script, script, *args)

    async def text(self, evse: int) -> str:
        """What EVSE `evse`'s display card says (rendered text)."""
        found = await self.js("const c = document.querySelector("
                              "`.display[data-evse='${arguments[0]}']`);"
                              "return c ? c.innerText : '';", str(evse))
        return str(found)

    async def until(self, script: str, *args: Any, timeout: float = 15.0,
                    what: str = "the page") -> Any:
        """Poll `script` until it returns something truthy."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = await self.js(script, *args)
            if value:
                return value
            if loop.time() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.02)

    async def shows(self, evse: int, *texts: str, timeout: float = 15.0) -> str:
        """Wait until EVSE `evse`'s card shows every one of `texts`; its whole text."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            shown = await self.text(evse)
            if all(t in shown for t in texts):
                return shown
            if loop.time() > deadline:
                raise AssertionError(f"EVSE {evse} never showed {texts}; it shows {shown!r}; "
                                     f"browser log: {self.console()}")
            await asyncio.sleep(0.02)

    def console(self) -> list[str]:
        """What the page logged (its errors), for a failure's message."""
        try:
            logs: list[dict[str, Any]] = self.driver.get_log(  # type: ignore[no-untyped-call]
                "browser")
            return [str(entry.get("message", ""))[:300] for entry in logs]
        except Exception:  # a driver without logs: nothing to add
            return []

    async def screenshot(self, path: Path) -> None:
        """A PNG of the viewport."""
        await asyncio.to_thread(self.driver.save_screenshot, str(path))

    def close(self) -> None:
        """Quit chromium."""
        self.driver.quit()
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture
def browser() -> Iterator[Browser]:
    """A headless chromium, skipped where none can run."""
    why = browser_missing()
    if why:
        pytest.skip(why)
    found = Browser()
    try:
        yield found
    finally:
        found.close()


def qr_codes(png: Path) -> list[str]:
    """The QR codes zbarimg reads in a screenshot."""
    if shutil.which("zbarimg") is None:
        pytest.skip("zbar-tools not installed (`make setup` installs it)")
    done = subprocess.run(["zbarimg", "--quiet", "--raw", str(png)], capture_output=True,
                          text=True, timeout=30, check=False)
    return [line for line in done.stdout.splitlines() if line]
