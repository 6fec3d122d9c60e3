"""The built-in WMS on PostgreSQL: concurrent retries of one issue post once, and
concurrent issues of different lines never drive stock below zero (row locks); the ERP
order, confirmation and delivery with backoff on PostgreSQL's types and locks."""

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


def test_erp_order_confirmation_and_delivery_on_postgres(fresh_pg_engine):
    from datetime import timedelta

    from tests.wms.fake_erp import DOWN, FakeErp, serve_erp
    from tests.wms.test_erp import Clock, ordered_batch, outbox, set_state
    from wms.erp import confirm_finished, deliver_pending, get_order

    seed_inventory(fresh_pg_engine)
    wms = BuiltinWms(fresh_pg_engine)
    ordered_batch(fresh_pg_engine, wms)
    set_state(fresh_pg_engine, "B-1", "released")
    assert confirm_finished(fresh_pg_engine, wms) == 1
    assert confirm_finished(fresh_pg_engine, wms) == 0
    clock = Clock()
    with serve_erp(FakeErp(script=[DOWN])) as erp:
        assert deliver_pending(fresh_pg_engine, erp.url, timeout_s=1, now=clock).pending == 1
        assert deliver_pending(fresh_pg_engine, erp.url, timeout_s=1, now=clock).pending == 0
        clock.at += timedelta(seconds=2)
        assert deliver_pending(fresh_pg_engine, erp.url, timeout_s=1, now=clock).delivered == 1
    assert len(erp.ledger) == 1 and len(erp.attempts) == 2
    assert outbox(fresh_pg_engine)[0].status == "delivered"
    assert get_order(fresh_pg_engine, "PO-4711").status == "confirmed"
    with Session(fresh_pg_engine) as s:
        assert verify_chain(s).ok


def test_a_second_erp_relay_on_postgres_skips_while_the_first_runs_a_round(
        fresh_pg_engine, tmp_path):
    from sqlalchemy import text

    from settings.config import Settings
    from tests.wms.fake_erp import FakeErp, serve_erp
    from tests.wms.test_erp import ordered_batch, set_state
    from wms.erp_relay import RELAY_LOCK, relay_round

    seed_inventory(fresh_pg_engine)
    wms = BuiltinWms(fresh_pg_engine)
    ordered_batch(fresh_pg_engine, wms)
    set_state(fresh_pg_engine, "B-1", "released")
    with serve_erp(FakeErp()) as erp:
        settings = Settings(var_dir=tmp_path, env="test", erp_url=erp.url, _env_file=None)
        with fresh_pg_engine.connect() as first_relay:  # holds the round
            first_relay.execute(text("SELECT pg_advisory_lock(:k)"), {"k": RELAY_LOCK})
            assert relay_round(settings, fresh_pg_engine, wms).delivered == 0
            assert erp.attempts == []
            first_relay.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": RELAY_LOCK})
        assert relay_round(settings, fresh_pg_engine, wms).delivered == 1
    assert list(erp.ledger) == ["confirmation:B-1"]
