"""Shared fixtures: one private mosquitto per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agent.dev.broker import Mosquitto, find_mosquitto


@pytest.fixture(scope="session")
def broker() -> Iterator[Mosquitto]:
    """A mosquitto on a free loopback port for the whole session."""
    if find_mosquitto() is None:
        pytest.fail("mosquitto is not installed: run `make setup` (it installs it)")
    with Mosquitto() as mosquitto:
        yield mosquitto


@pytest.fixture
def own_broker() -> Iterator[Mosquitto]:
    """A broker this test may kill and restart."""
    if find_mosquitto() is None:
        pytest.fail("mosquitto is not installed: run `make setup` (it installs it)")
    with Mosquitto() as mosquitto:
        yield mosquitto
