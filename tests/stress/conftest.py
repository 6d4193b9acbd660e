"""Every test in this folder is in the stress tier."""

import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        if "/stress/" in str(item.fspath):
            item.add_marker(pytest.mark.stress)
