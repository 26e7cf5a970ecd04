"""Suite-wide guards."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ("envs", "agent", "credit", "trainer", "evaluation")


@pytest.fixture(autouse=True, scope="session")
def _library_imported_only_as_steprl():
    """pytest puts the repo root on sys.path, so a bare ``import credit`` would load a second copy of
    ``steprl.credit`` (its classes unequal to the real ones). Fail the session if anything did."""
    yield
    stray = sorted(name for name in sys.modules if name.split(".")[0] in LIBRARY
                   and str(getattr(sys.modules[name], "__file__", "") or "").startswith(str(ROOT)))
    assert not stray, f"imported under bare names instead of steprl.*: {stray}"
