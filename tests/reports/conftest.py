"""Fixtures for the eBMR report tests: one realistic ebr.batch-record/1 and a demo PKI."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import pytest

RECIPE_YAML = """\
recipe_id: VC-BLEND
version: 1.0.0
product: {code: VC-BLEND-500, name: Vitamin C 500 blend}
batch_size: {nominal: 2.000, unit: kg}
procedure:
  - unit_procedure: dispensing
    operations:
      - operation: weigh
        phases: [weigh-ascorbic-acid, weigh-microcrystalline-cellulose]
  - unit_procedure: blending
    operations:
      - operation: mix
        phases: [mix-blend, check-appearance]
"""


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _signature(sig_id: int, full_name: str, username: str, meaning: str, at: str) -> dict:
    return {
        "signature_id": sig_id,
        "full_name": full_name,
        "username": username,
        "meaning": meaning,
        "signed_at": at,
        "content_sha256": _sha(f"signature-{sig_id}"),
    }


def _weigh(
    step_id: str, title: str, net: str, low: str, high: str, result: str, at: str, sig: int
) -> dict:
    return {
        "step_id": step_id,
        "kind": "weigh",
        "title": title,
        "instruction": f"Tare a clean container on SCALE-01, then dispense {title.lower()}.",
        "unit_procedure": "dispensing",
        "operation": "weigh",
        "result": result,
        "values": {"net_weight": net, "tare_weight": "152.40"},
        "unit": "g",
        "limits": {"low": low, "high": high, "unit": "g"},
        "device": {
            "equipment_id": "SCALE-01",
            "serial": "B123456789",
            "raw_frames": ["T S     152.40 g", f"S S    {net:>8} g"],
            "read_at": at,
        },
        "comment": "",
        "signature": _signature(sig, "Olivia Operator", "operator", "performed", at),
    }


def make_record() -> dict[str, Any]:
    steps = [
        _weigh(
            "dispensing/weigh/weigh-ascorbic-acid",
            "Ascorbic acid",
            "1200.00",
            "1188.00",
            "1212.00",
            "pass",
            "2026-11-21T22:31:02+00:00",
            3,
        ),
        _weigh(
            "dispensing/weigh/weigh-microcrystalline-cellulose",
            "Microcrystalline cellulose",
            "781.20",
            "792.00",
            "808.00",
            "fail",
            "2026-11-21T22:33:40+00:00",
            4,
        ),
        {
            "step_id": "blending/mix/mix-blend",
            "kind": "mix",
            "title": "Blend",
            "instruction": "Load both materials into MIXER-01 and mix at 25 rpm for 10 min.",
            "unit_procedure": "blending",
            "operation": "mix",
            "result": "pass",
            "values": {"speed": "25", "duration": "600"},
            "unit": None,
            "limits": None,
            "device": None,
            "comment": "Mixer lid re-seated before start.",
            "signature": _signature(
                5, "Olivia Operator", "operator", "performed", "2026-11-21T23:46:10+01:00"
            ),
        },
        {
            "step_id": "blending/mix/check-appearance",
            "kind": "check",
            "title": "Check blend appearance",
            "instruction": "Confirm the blend is white to off-white and free of lumps.",
            "unit_procedure": "blending",
            "operation": "mix",
            "result": "pass",
            "values": {"appearance_ok": "yes"},
            "unit": None,
            "limits": None,
            "device": None,
            "comment": "",
            "signature": _signature(
                6, "Victor Verifier", "verifier", "verified", "2026-11-21T22:37:30+00:00"
            ),
        },
    ]
    audit = [
        {
            "at": "2026-11-21T22:30:00+00:00",
            "actor": "supervisor",
            "action": "batch.created",
            "subject": "B-2026-0001",
            "detail": "recipe VC-BLEND 1.0.0, 2.000 kg",
        }
    ]
    for step in steps:
        audit.append(
            {
                "at": step["signature"]["signed_at"],
                "actor": step["signature"]["username"],
                "action": "step.completed",
                "subject": f"B-2026-0001/{step['step_id']}",
                "detail": f"result {step['result']}",
            }
        )
    audit.append(
        {
            "at": "2026-11-21T22:39:00+00:00",
            "actor": "qa",
            "action": "batch.released",
            "subject": "B-2026-0001",
            "detail": "deviation DEV-17 assessed",
        }
    )
    return {
        "format": "ebr.batch-record/1",
        "generated_at": "2026-11-21T22:40:00+00:00",
        "batch": {
            "batch_id": "B-2026-0001",
            "state": "released",
            "product_code": "VC-BLEND-500",
            "product_name": "Vitamin C 500 blend",
            "recipe_id": "VC-BLEND",
            "recipe_version": "1.0.0",
            "recipe_sha256": _sha(RECIPE_YAML),
            "batch_size": "2.000",
            "batch_unit": "kg",
            "created_at": "2026-11-21T22:30:00+00:00",
            "created_by": "supervisor",
            "completed_at": "2026-11-21T22:37:30+00:00",
            "released_at": "2026-11-21T22:39:00+00:00",
            "equipment": {"scale": "SCALE-01", "mixer": "MIXER-01"},
        },
        "steps": steps,
        "release": {
            "decision": "released",
            "reason": "Under-weight MCC assessed under DEV-17: within blend tolerance.",
            "signature": _signature(
                7, "Quinn Quality", "qa", "approved", "2026-11-21T22:39:00+00:00"
            ),
        },
        "audit": audit,
    }


@pytest.fixture
def record() -> dict[str, Any]:
    return make_record()


@pytest.fixture
def recipe_yaml() -> str:
    return RECIPE_YAML


@pytest.fixture(scope="session")
def _pristine_record() -> dict[str, Any]:
    return make_record()


@pytest.fixture(scope="session")
def rendered(_pristine_record: dict[str, Any]):
    """One rendering shared by the suite: WeasyPrint is the slow part (~0.15 s per page)."""
    from reports.render import render_batch_record

    return render_batch_record(copy.deepcopy(_pristine_record), RECIPE_YAML)


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory):
    from reports.pki import ensure_signing_identity

    return ensure_signing_identity(tmp_path_factory.mktemp("pki"), b"test passphrase")


@pytest.fixture(scope="module")
def record_copy() -> dict[str, Any]:
    """The record `rendered` was made from, for comparisons in module-scoped tests."""
    return make_record()
