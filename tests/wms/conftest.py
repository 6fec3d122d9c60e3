from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.engine import Engine

from wms.builtin import BuiltinWms
from wms.seed import seed_inventory


class Calendar:
    """The WMS's 'today', movable so a test can step past an expiry date."""

    def __init__(self) -> None:
        self.day = date(2026, 11, 21)

    def __call__(self) -> date:
        return self.day


@pytest.fixture
def calendar() -> Calendar:
    return Calendar()


@pytest.fixture
def wms(engine: Engine, calendar: Calendar) -> BuiltinWms:
    seed_inventory(engine)
    return BuiltinWms(engine, today=calendar)
