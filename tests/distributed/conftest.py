"""One pool of 2 gloo worker processes shared by the distributed tests (see launcher.py)."""

from __future__ import annotations

import pytest

from .launcher import Workers


@pytest.fixture(scope="session")
def workers():
    pool = Workers(2)
    pool.start()
    yield pool
    pool.close()
