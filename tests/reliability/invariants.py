"""What must hold for a batch after any fault (docs/reliability.md).

`check_batch` is called at the end of every fault test, on the real record store and the
real Temporal server the test's stack used:

- each business action has exactly one record, one signature and one audit entry;
- each WMS issue key is applied once and the quantity issued to a weighed phase equals the
  quantity recorded for it;
- the audit chain verifies with no gaps;
- the batch's Temporal history replays against the current workflow code.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from decimal import Decimal

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from temporalio.worker import Replayer

from recipes import units
from runtime.temporal_client import connect
from settings.config import Settings
from store.audit import verify_chain
from store.models import AuditEvent, Signature, StepRecord
from wms.models import Movement
from workflows.batch import BatchWorkflow


def check_records(engine: Engine, batch_id: str) -> None:
    """One record, one signature, one audit entry per action; issues equal records."""
    with Session(engine) as db:
        records = list(db.exec(select(StepRecord).where(StepRecord.batch_id == batch_id)))
        signatures = list(db.exec(select(Signature).where(Signature.batch_id == batch_id)))
        audit_keys = Counter(db.exec(select(AuditEvent.key)))
        issues = list(db.exec(select(Movement).where(
            Movement.batch_id == batch_id, col(Movement.kind) == "issue")))
        chain = verify_chain(db)
    assert chain.ok, f"the audit chain does not verify: {chain}"

    # A phase instance has one record per version (a correction adds the next version).
    versions = Counter((r.step_id, r.version) for r in records)
    assert all(n == 1 for n in versions.values()), f"a step recorded twice: {versions}"
    by_id = {s.id: s for s in signatures}
    used = Counter(r.signature_id for r in records)
    assert all(n == 1 for n in used.values()), f"records share a signature: {used}"
    assert set(used) <= set(by_id), "a record names a signature that does not exist"
    for record in records:
        assert by_id[record.signature_id].key == record.key, record.key
    for signature in signatures:
        entries = audit_keys[f"{signature.key}/audit"]
        assert entries == 1, f"signature {signature.key} has {entries} audit entries"

    # Movement keys are unique in the ledger (each issue key applied once); the issued
    # quantities of a weighed phase are what its record says was weighed.
    issued: dict[str, Decimal] = {}
    for move in issues:
        converted = units.convert(move.quantity, move.unit, "g")
        issued[move.phase_instance] = issued.get(move.phase_instance, Decimal(0)) + converted
    recorded: dict[str, Decimal] = {}
    for record in records:
        values = json.loads(record.values_json)
        if record.kind == "weigh" and values.get("lots") and not record.reason:
            recorded[record.step_id] = units.convert(Decimal(values["value"]), values["unit"], "g")
    assert set(issued) == set(recorded), f"issued {issued} but recorded {recorded}"
    for instance, grams in recorded.items():
        assert issued[instance] == grams, (
            f"{instance}: issued {issued[instance]} g, recorded {grams} g")


async def replay_history(settings: Settings, batch_id: str) -> None:
    """The batch's history as the server holds it replays on the current code."""
    client = await connect(settings, wait_s=60)
    history = await client.get_workflow_handle(batch_id).fetch_history()
    await Replayer(workflows=[BatchWorkflow]).replay_workflow(history)


def check_batch(settings: Settings, engine: Engine, batch_id: str) -> None:
    check_records(engine, batch_id)
    asyncio.run(replay_history(settings, batch_id))
