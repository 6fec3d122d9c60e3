"""Demo inventory for the example recipe's inputs (RM-ASC, RM-MCC) and its output.

Idempotent: materials and bins are keyed by code, receipts and status changes by fixed
idempotency keys, so every start may call `seed_inventory` and only the first writes.
The lots are chosen to show FEFO and refusals: two released ascorbic acid lots with
different expiry dates, one on hold and one expired; MCC released and in quarantine.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from wms.builtin import BuiltinWms
from wms.messages import EXPIRED, ON_HOLD, QUARANTINE, RELEASED, ReceiptRequest

SEED_ACTOR = "seed"

# GTINs with valid check digits under the 0760123456 demo prefix; the SSCC too.
MATERIALS = (
    ("RM-ASC", "Ascorbic acid", "kg", "07601234560013"),
    ("RM-MCC", "Microcrystalline cellulose PH-102", "kg", "07601234560020"),
    ("VC-BLEND-500", "Vitamin C 500 mg blend", "kg", "07601234560037"),
)
BINS = (("WH-A-01", "Warehouse A, rack 1", False), ("WH-A-02", "Warehouse A, rack 2", False),
        ("DISP-STAGE", "Dispensary staging", True), ("FG-01", "Finished goods", False))
# lot, material, quantity kg, bin, expiry, retest, potency %, status, sscc
LOTS = (
    ("ASC-2601", "RM-ASC", "25", "WH-A-01", "2028-06-30", "2027-06-30", "99.6", RELEASED,
     "376012345000000010"),
    ("ASC-2602", "RM-ASC", "25", "WH-A-02", "2029-03-31", "2028-03-31", "99.8", RELEASED, ""),
    ("ASC-2603", "RM-ASC", "10", "WH-A-02", "2028-09-30", "", "99.5", ON_HOLD, ""),
    ("ASC-2401", "RM-ASC", "2", "WH-A-02", "2025-12-31", "", "99.4", EXPIRED, ""),
    ("MCC-2601", "RM-MCC", "40", "WH-A-01", "2030-01-31", "2028-01-31", "", RELEASED, ""),
    ("MCC-2602", "RM-MCC", "40", "WH-A-02", "2030-06-30", "", "", QUARANTINE, ""),
)  # fmt: skip


def seed_inventory(engine: Engine) -> None:
    wms = BuiltinWms(engine)
    for code, name, unit, gtin in MATERIALS:
        wms.create_material(code, name, unit, gtin, SEED_ACTOR)
    for code, location, staging in BINS:
        wms.create_bin(code, location, SEED_ACTOR, staging=staging)
    for lot, material, qty, bin_code, expiry, retest, potency, status, sscc in LOTS:
        wms.receive(ReceiptRequest(
            key=f"seed:receipt:{lot}", material_code=material, lot_number=lot, quantity=qty,
            unit="kg", bin_code=bin_code, actor=SEED_ACTOR, expiry=expiry, retest=retest,
            potency=potency, sscc=sscc, status=status))
