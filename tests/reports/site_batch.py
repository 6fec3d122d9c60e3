"""A batch executed against a real record store with the built-in WMS and QMS.

Shared by the record-assembly and publication tests: weighed material issued from two
lots, a correction, a hold and restart, a deviation with QA's signed disposition, an
output lot (genealogy) and QA's release. Written through the stores' own methods, as
the workflow's activities write them.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from qms.builtin import BuiltinQms
from qms.messages import DispositionRequest, NoteRequest, OpenDeviationRequest
from store.batch_record import BatchRecordStore
from tests.sample_plan import PLAN
from wms.builtin import BuiltinWms
from wms.messages import RELEASED, IssueRequest, OutputRequest, ReceiptRequest
from workflows.messages import (
    ReleaseRecordInput,
    SignatureIntent,
    Signer,
    StateChangeRecordInput,
    StepRecordInput,
    WeightReading,
)

BATCH = "B-SITE-1"
WEIGH, LOD, MIX = "d/w/weigh-a", "b/b/lod", "b/b/mix"
OPERATOR = Signer(3, "operator", "Olivia Operator", ["operator"])
SUPERVISOR = Signer(4, "supervisor", "Sam Supervisor", ["supervisor"])
QA = Signer(5, "qa", "Quinn Quality", ["qa"])
QA2 = Signer(6, "qa2", "Quentin Quality", ["qa"])


def _sig(signer: Signer, meaning: str, at: str) -> SignatureIntent:
    return SignatureIntent(signer=signer, meaning=meaning, signed_at=at)


def run_site_batch(engine: Engine, batch_id: str = BATCH) -> BatchRecordStore:
    store = BatchRecordStore(engine, site_name="Test plant", site_timezone="Europe/Zurich")
    store.create_batch(batch_id, PLAN, {"scale": "SCALE-01", "mixer": "MIXER-01"}, "supervisor")
    wms = BuiltinWms(engine)
    wms.create_material("RM-A", "Material A", "g", "", "seed")
    wms.create_material("T-500", "Test blend", "kg", "", "seed")
    wms.create_bin("WH-1", "Warehouse", "seed")
    # Lot numbers are unique site-wide: a second batch on the same site gets its own lots.
    tag = "" if batch_id == BATCH else f"{batch_id}-"
    for lot, qty, expiry in (("LOT-A1", "700", "2028-01-31"), ("LOT-A2", "5000", "2029-06-30")):
        lot = tag + lot
        wms.receive(ReceiptRequest(key=f"r:{lot}", material_code="RM-A", lot_number=lot,
                                   quantity=qty, unit="g", bin_code="WH-1", actor="seed",
                                   expiry=expiry, supplier_lot=f"S-{lot}", status=RELEASED))
    reading = WeightReading(equipment_id="SCALE-01", value="1200.00", unit="g",
                            device_value="1.20000", device_unit="kg",
                            raw_frames=["S S      1.20000 kg"], device_serial="B123456789",
                            read_at="2026-11-21T22:31:00+00:00", in_tolerance=True)
    for line, (lot, qty) in enumerate((("LOT-A1", "700"), ("LOT-A2", "500")), start=1):
        lot = tag + lot
        wms.issue(IssueRequest(key=f"i:{batch_id}:{line}", batch_id=batch_id,
                               phase_instance=WEIGH, line=line, material_code="RM-A",
                               lot_number=lot, quantity=qty, unit="g", actor="ebr"))
    store.record_step(StepRecordInput(
        batch_id, WEIGH, "u-weigh", "weigh", "Weigh A", "pass",
        {"value": "1200.00", "unit": "g", "lots": "LOT-A1 700 g; LOT-A2 500 g"},
        _sig(OPERATOR, "performed", "2026-11-21T22:31:05+00:00"), reading=reading))
    store.record_step(StepRecordInput(
        batch_id, LOD, "u-lod", "check", "LOD", "fail", {"value": "2.6", "unit": "percent"},
        _sig(OPERATOR, "performed", "2026-11-21T22:40:00+00:00")))
    store.record_step(StepRecordInput(
        batch_id, LOD, "u-lod-2", "check", "LOD", "pass", {"value": "1.6", "unit": "percent"},
        _sig(SUPERVISOR, "performed", "2026-11-21T22:45:00+00:00"),
        reason="Transcription error: the balance printout says 1.6"))
    store.record_state_change(StateChangeRecordInput(
        batch_id, "u-hold", "running", "held", "Mixer noise, checking the gearbox",
        _sig(SUPERVISOR, "held", "2026-11-21T22:50:00+00:00")))
    store.record_state_change(StateChangeRecordInput(
        batch_id, "u-restart", "held", "running", "Gearbox checked, no fault",
        _sig(SUPERVISOR, "restarted", "2026-11-21T23:20:00+00:00")))
    qms = BuiltinQms(engine, wms)
    ref = qms.open_deviation(OpenDeviationRequest(
        key=f"deviation:{batch_id}:{LOD}:fail", batch_id=batch_id, phase_instance=LOD,
        classification="major", title="LOD above limit", description="LOD 2.6 % > 2.0 %",
        actor="system", lots=[tag + "LOT-A1"], origin="automatic"))
    qms.add_note(NoteRequest(key=f"n1:{batch_id}", deviation_id=ref.deviation_id,
                             note="Balance printout shows 1.6 %", actor="qa2"))
    qms.disposition(DispositionRequest(
        key=f"d1:{batch_id}", deviation_id=ref.deviation_id, disposition="accept",
        rationale="Transcription error, corrected value within limits", capa_ref="CAPA-9",
        signature=_sig(QA, "reviewed", "2026-11-21T23:30:00+00:00")))
    wms.record_output(OutputRequest(key=f"o:{batch_id}", batch_id=batch_id,
                                    material_code="T-500", lot_number=f"{batch_id}-OUT",
                                    quantity="1.2", unit="kg", to_bin="WH-1", actor="ebr",
                                    expiry="2028-11-30"))
    store.record_release(ReleaseRecordInput(
        batch_id, "u-release", "released", "Deviation accepted, record complete",
        _sig(QA, "released", "2026-11-21T23:40:00+00:00")))
    return store
