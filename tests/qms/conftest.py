from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from qms.builtin import BuiltinQms
from wms.builtin import BuiltinWms
from wms.seed import seed_inventory
from workflows.messages import SignatureIntent, Signer


@pytest.fixture
def wms(engine: Engine) -> BuiltinWms:
    seed_inventory(engine)
    return BuiltinWms(engine)


@pytest.fixture
def qms(engine: Engine, wms: BuiltinWms) -> BuiltinQms:
    return BuiltinQms(engine, wms)


def signature(username: str, roles: list[str], meaning: str = "approved") -> SignatureIntent:
    return SignatureIntent(
        signer=Signer(user_id=7, username=username, full_name=username.title(), roles=roles),
        meaning=meaning, signed_at="2026-11-21T10:00:00.000+00:00")
