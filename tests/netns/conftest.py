"""Fixtures of the test-network tests: the internet of namespaces, always torn down."""
from __future__ import annotations

from typing import Iterator

import pytest

from tests.harness import procs
from tests.harness.netns import Internet, NetnsUnavailable


@pytest.fixture
def internet() -> Iterator[Internet]:
    """An empty test internet (build it in the test); deleted at the end whatever happens.

    Without root or nft the test fails with the harness's one line, it never skips.
    """
    reason = None
    try:
        net = Internet()
    except NetnsUnavailable as exc:
        reason = str(exc)
    if reason is not None:
        pytest.fail(reason, pytrace=False)
    try:
        yield net
    finally:
        net.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    procs.stop_all()
