"""Each package's __all__ is sorted and names only things that exist."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize(
    "package",
    [
        "events",
        "actions",
        "triggers",
        "sla",
        "tripwire",
        "tripwire_client",
        "tripwire_client.airflow",
    ],
)
def test_all_is_sorted_and_complete(package: str) -> None:
    module = importlib.import_module(package)
    names = list(module.__all__)
    assert names == sorted(names)
    for name in names:
        assert hasattr(module, name), f"{package}.{name} is in __all__ but missing"
