"""The built-in WMS on PostgreSQL: concurrent retries of one issue post once, and
concurrent issues of different lines never drive stock below zero (row locks)."""

from __future__ import annotations

import concurrent.futures

from sqlmodel import Session

from store.audit import verify_chain
from wms import messages as m
from wms.builtin import BuiltinWms
from wms.port import InsufficientStock
from wms.seed import seed_inventory


def test_concurrent_issues_on_postgres_post_once_and_never_overdraw(fresh_pg_engine):
    seed_inventory(fresh_pg_engine)
    wms = BuiltinWms(fresh_pg_engine)

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
    with Session(fresh_pg_engine) as s:
        assert verify_chain(s).ok
