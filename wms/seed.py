"""Demo inventory: the inputs and outputs of every example recipe in recipes/examples/.

Idempotent: materials and bins are keyed by code, receipts and status changes by fixed
idempotency keys, so every start may call `seed_inventory` and only the first writes.
The lots are chosen to show FEFO and refusals: two released ascorbic acid lots with
different expiry dates, one on hold and one expired; MCC released and in quarantine;
pork, paracetamol and water each in two released lots so FEFO picks the earlier one.
Every example's formula finds enough released, unexpired stock at its nominal size
(tests/runtime/test_demo_site.py checks that for each file in recipes/examples/).
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
    # supplement-blend
    ("RM-ZNC", "Zinc citrate dihydrate", "kg", "07601234560044"),
    ("RM-SIO2", "Colloidal silicon dioxide", "kg", "07601234560051"),
    ("DS-VCZN-500", "Vitamin C 500 mg + zinc 15 mg blend", "kg", "07601234560068"),
    # cooked-sausage
    ("RM-PORK", "Pork shoulder 80/20, frozen", "kg", "07601234560075"),
    ("RM-ICE", "Ice water", "kg", "07601234560082"),
    ("RM-NITSALT", "Nitrite curing salt", "kg", "07601234560099"),
    ("RM-SEASON", "Bratwurst seasoning premix", "kg", "07601234560105"),
    ("CS-BRAT-100", "Cooked bratwurst, 100 g links", "kg", "07601234560112"),
    # wet-granulation
    ("RM-PARA", "Paracetamol", "kg", "07601234560129"),
    ("RM-LAC", "Lactose monohydrate", "kg", "07601234560136"),
    ("RM-PVP", "Povidone K30", "kg", "07601234560143"),
    ("RM-H2O", "Purified water", "kg", "07601234560150"),
    ("WG-PARA-500", "Paracetamol 500 mg granulate", "kg", "07601234560167"),
    # cosmetic-emulsion
    ("RM-AQUA", "Purified water (cosmetic grade)", "kg", "07601234560174"),
    ("RM-GLY", "Glycerin", "kg", "07601234560181"),
    ("RM-CET", "Cetearyl alcohol", "kg", "07601234560198"),
    ("RM-CCT", "Caprylic/capric triglyceride", "kg", "07601234560204"),
    ("RM-PHE", "Phenoxyethanol", "kg", "07601234560211"),
    ("RM-PARF", "Fragrance", "kg", "07601234560228"),
    ("COS-CREAM-50", "Moisturising cream bulk", "kg", "07601234560235"),
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
    ("ZNC-2601", "RM-ZNC", "5", "WH-A-01", "2029-05-31", "2028-05-31", "", RELEASED, ""),
    ("SIO2-2601", "RM-SIO2", "2", "WH-A-01", "2030-02-28", "", "", RELEASED,
     "376012345000000027"),
    ("PORK-2611", "RM-PORK", "100", "WH-A-01", "2027-05-31", "", "", RELEASED, ""),
    ("PORK-2612", "RM-PORK", "200", "WH-A-02", "2027-06-30", "", "", RELEASED, ""),
    ("ICE-2611", "RM-ICE", "100", "WH-A-01", "2028-12-31", "", "", RELEASED, ""),
    ("NIT-2601", "RM-NITSALT", "10", "WH-A-01", "2028-10-31", "", "", RELEASED, ""),
    ("SEAS-2603", "RM-SEASON", "10", "WH-A-01", "2027-09-30", "", "", RELEASED, ""),
    ("PARA-2601", "RM-PARA", "5", "WH-A-01", "2029-01-31", "2028-01-31", "99.9", RELEASED, ""),
    ("PARA-2602", "RM-PARA", "10", "WH-A-02", "2029-08-31", "2028-08-31", "100.1", RELEASED,
     ""),
    ("LAC-2601", "RM-LAC", "20", "WH-A-01", "2029-04-30", "", "", RELEASED, ""),
    ("PVP-2601", "RM-PVP", "2", "WH-A-01", "2029-11-30", "", "", RELEASED, ""),
    ("H2O-2611", "RM-H2O", "20", "WH-A-01", "2027-05-31", "", "", RELEASED, ""),
    ("AQUA-2611", "RM-AQUA", "20", "WH-A-01", "2027-05-31", "", "", RELEASED, ""),
    ("GLY-2601", "RM-GLY", "5", "WH-A-01", "2029-06-30", "", "", RELEASED, ""),
    ("CET-2601", "RM-CET", "5", "WH-A-01", "2029-03-31", "", "", RELEASED, ""),
    ("CCT-2601", "RM-CCT", "10", "WH-A-01", "2028-11-30", "", "", RELEASED, ""),
    ("PHE-2601", "RM-PHE", "1", "WH-A-01", "2029-09-30", "", "", RELEASED, ""),
    ("PARF-2601", "RM-PARF", "1", "WH-A-01", "2028-07-31", "", "", RELEASED, ""),
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
