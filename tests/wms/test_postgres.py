"""The built-in WMS on PostgreSQL: concurrent retries of one issue post once, and
concurrent issues of different lines never drive stock below zero (row locks)."""

from __future__ import annotations

import concurrent.futures
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from store.audit import verify_chain
from store.db import create_schema, make_engine
from wms import messages as m
from wms.builtin import BuiltinWms
from wms.port import InsufficientStock
from wms.seed import seed_inventory

psycopg = pytest.importorskip("psycopg")
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    name = f"ebr_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server on 127.0.0.1:5432 ({exc})")
    admin.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
    try:
        create_schema(engine)
        yield engine
    finally:
        engine.dispose()
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


def test_concurrent_issues_on_postgres_post_once_and_never_overdraw(pg_engine):
    seed_inventory(pg_engine)
    wms = BuiltinWms(pg_engine)

    def issue(line: int) -> str:
        request = m.IssueRequest(key=f"k-{line}", batch_id="B-1", phase_instance="p", line=line,
                                 material_code="RM-ASC", lot_number="ASC-2601", quantity="4",
                                 unit="kg", actor="olivia")
        try:
            return "replayed" if wms.issue(request).replayed else "posted"
        except InsufficientStock:
            return "refused"

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        retries = list(pool.map(lambda _: issue(1), range(6)))
    assert retries.count("posted") == 1
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        lines = list(pool.map(issue, range(2, 10)))
    # 25 kg on hand, 4 kg already issued: five more 4 kg lines fit, three do not.
    assert (lines.count("posted"), lines.count("refused")) == (5, 3)
    assert wms.lot(m.LotQuery("ASC-2601")).on_hand == "1"
    with Session(pg_engine) as s:
        assert verify_chain(s).ok
