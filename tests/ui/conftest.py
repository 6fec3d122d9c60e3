"""Fixtures of the page tests (tests/ui/rig.py)."""

from tests.ui.rig import rig, site  # noqa: F401
