"""Fixtures the browser tests (tests/browser, tests/book) share."""

import pytest
from browser_finder import find_browser  # tests/ is on sys.path: pytest puts a conftest's folder there


@pytest.fixture(scope="session")
def browser_path() -> str:
    """A Chromium-family browser's executable; without one the test is skipped, saying how to get one."""
    path, how = find_browser()
    if path is None:
        pytest.skip(how)
    return path
