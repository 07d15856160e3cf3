"""Test plugin output `type = "testsink"`: appends each view's JSON as a line to `path`."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

import msgspec

from agent.model.view import View, encode_view
from agent.outputs.base import OutputConfig

# An entry point whose object is not an output kind (no CONFIG, no create).
NOT_AN_OUTPUT = {"hello": "world"}


def _append(path: str, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


class TestsinkConfig(OutputConfig, frozen=True, tag="testsink"):
    """`[[output]] type = "testsink"`."""

    path: Annotated[str, msgspec.Meta(min_length=1)]
    # "deaf": shows the view, then hangs and swallows the first cancel (a buggy plugin).
    fail: Literal["never", "open", "show", "deaf"] = "never"


class TestsinkOutput:
    """Writes views to a file; fails on purpose when told."""

    def __init__(self, config: TestsinkConfig) -> None:
        self.config = config
        self.opened = False

    async def open(self) -> None:
        """Fail here if `fail = "open"`."""
        if self.config.fail == "open":
            raise OSError(f"testsink: cannot open {self.config.path}")
        self.opened = True

    async def show(self, view: View) -> None:
        """Append the view; fail if `fail = "show"`."""
        if self.config.fail == "show":
            raise RuntimeError("testsink: display rejected the view")
        await asyncio.to_thread(_append, self.config.path, encode_view(view) + b"\n")
        if self.config.fail == "deaf":
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                await asyncio.Event().wait()

    async def close(self) -> None:
        """Nothing to release."""
        self.opened = False


CONFIG = TestsinkConfig


def create(config: TestsinkConfig) -> TestsinkOutput:
    """Build the output from its validated config."""
    return TestsinkOutput(config)
