"""The record store on PostgreSQL: same tables, same idempotent writes, same audit chain.

Uses a fresh database per run on the local server (127.0.0.1:5432) and drops it after.
"""

from __future__ import annotations

from sqlmodel import Session

from signatures.identity import UserDirectory
from store.audit import verify_chain
from store.batch_record import BatchRecordStore
from tests.sample_plan import PLAN
from workflows.messages import StepRecordInput

# A later signature of its session: the password alone (the first needs the user id).
LATER = {"username": None, "first_in_session": False}


def test_signed_step_is_recorded_once_and_verifies_on_postgres(fresh_pg_engine):
    users = UserDirectory(fresh_pg_engine)
    users.ensure_user("olivia", "Olivia Operator", "operator-pass-1", ["operator"], "test")
    store = BatchRecordStore(fresh_pg_engine)
    store.create_batch("PG-1", PLAN, {"scale": "SCALE-01"}, "sup")
    intent = users.sign(users.get("olivia"), "operator-pass-1", "performed", "operator", **LATER)
    step = StepRecordInput("PG-1", "b/b/lod", "u-1", "check", "LOD", "pass",
                           {"value": "1.1", "unit": "percent"}, intent)
    assert store.record_step(step) == store.record_step(step)
    record = store.assemble_record("PG-1")
    assert len(record["steps"]) == 1 and record["steps"][0]["signature_verified"]
    with Session(fresh_pg_engine) as session:
        assert verify_chain(session).ok


def test_concurrent_appenders_keep_one_unbroken_chain_on_postgres(fresh_pg_engine):
    import concurrent.futures

    from store import audit
    from store.db import transaction

    def append(i: int) -> None:
        with transaction(fresh_pg_engine) as session:
            audit.append(session, key=f"c{i}", actor="t", action="t.append", subject=f"S/{i}")

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(append, range(80)))
    with Session(fresh_pg_engine) as session:
        check = verify_chain(session)
        assert check.ok and check.entries >= 80
