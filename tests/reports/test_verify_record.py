"""Verification beyond the signature: does the signed record still say what the database says?"""

from __future__ import annotations

import copy
import io
import re

import pytest
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from reports.pki import SigningIdentity
from reports.render import RenderedPdf, render_batch_record
from reports.sign import sign_pdf
from reports.verify import compare_records, verify_pdf


@pytest.fixture(scope="module")
def signed(rendered: RenderedPdf, identity: SigningIdentity) -> bytes:
    return sign_pdf(rendered.pdf, identity)


def _stored(record: dict) -> dict:
    """The record as the store would assemble it later: a new generated_at, one more entry."""
    stored = copy.deepcopy(record)
    stored["generated_at"] = "2026-11-22T09:00:00+00:00"
    stored["audit"].append(
        {
            "at": "2026-11-21T22:40:05+00:00",
            "actor": "system",
            "action": "report.signed",
            "subject": "B-2026-0001",
            "detail": '{"pages": "5"}',
        }
    )
    return stored


def test_untouched_record_matches_the_database(
    signed: bytes, identity: SigningIdentity, record_copy: dict
) -> None:
    result = verify_pdf(signed, identity.root_cert, _stored(record_copy))
    assert result.ok
    assert result.record_matches is True
    assert result.record_differences == ()
    assert result.audit_entries_after_signing == 1


def test_without_a_stored_record_nothing_is_compared(
    signed: bytes, identity: SigningIdentity
) -> None:
    result = verify_pdf(signed, identity.root_cert)
    assert result.ok
    assert result.record_matches is None


def test_a_value_changed_in_the_database_is_named(
    signed: bytes, identity: SigningIdentity, record_copy: dict
) -> None:
    stored = _stored(record_copy)
    stored["steps"][1]["values"]["net_weight"] = "800.00"
    result = verify_pdf(signed, identity.root_cert, stored)
    # The PDF itself is fine; it is the database that no longer agrees with it.
    assert result.ok
    assert result.record_matches is False
    assert result.record_differences == (
        "steps[1].values.net_weight: signed '781.20', database '800.00'",
    )


def test_a_signed_audit_entry_missing_from_the_database_is_a_difference(
    signed: bytes, identity: SigningIdentity, record_copy: dict
) -> None:
    stored = _stored(record_copy)
    del stored["audit"][2]
    result = verify_pdf(signed, identity.root_cert, stored)
    assert result.record_matches is False
    assert any(d.startswith("audit[2]") for d in result.record_differences)


def test_a_record_signed_for_another_batch_state_does_not_match(
    identity: SigningIdentity, record_copy: dict, recipe_yaml: str
) -> None:
    # A genuinely signed PDF of an earlier rendering swapped in for the current one.
    earlier = copy.deepcopy(record_copy)
    earlier["batch"]["state"] = "complete"
    earlier["release"] = None
    pdf = sign_pdf(render_batch_record(earlier, recipe_yaml).pdf, identity)
    result = verify_pdf(pdf, identity.root_cert, _stored(record_copy))
    assert result.ok
    assert result.record_matches is False
    assert "batch.state: signed 'complete', database 'released'" in result.record_differences
    assert any(d.startswith("release:") for d in result.record_differences)


def test_a_changed_byte_in_the_embedded_record_fails_the_signature(
    signed: bytes, identity: SigningIdentity, record_copy: dict
) -> None:
    marker = re.search(rb"/Type\s*/EmbeddedFile\b", signed)
    assert marker is not None
    start = signed.index(b"stream", marker.end()) + len(b"stream\n") + 20
    tampered = bytearray(signed)
    tampered[start] ^= 0xFF
    result = verify_pdf(bytes(tampered), identity.root_cert, _stored(record_copy))
    assert not result.ok
    assert result.intact is False
    # Nothing the signature no longer vouches for is compared or returned.
    assert result.record is None
    assert result.record_matches is None


def test_an_appended_update_is_reported_and_the_signed_record_still_compared(
    signed: bytes, identity: SigningIdentity, record_copy: dict
) -> None:
    writer = IncrementalPdfFileWriter(io.BytesIO(signed))
    writer.document_meta.title = "edited"
    writer.update_root()
    out = io.BytesIO()
    writer.write(out)
    result = verify_pdf(out.getvalue(), identity.root_cert, _stored(record_copy))
    assert not result.ok
    assert result.covers_whole_file is False
    assert result.record_matches is True


def test_compare_records_ignores_generation_time_only(record_copy: dict) -> None:
    stored = copy.deepcopy(record_copy)
    stored["generated_at"] = "2030-01-01T00:00:00+00:00"
    assert compare_records(record_copy, stored) == ((), 0)
    stored["batch"]["extra"] = "x"
    differences, _ = compare_records(record_copy, stored)
    assert differences == ("batch.extra: signed (absent), database 'x'",)


def test_compare_records_caps_the_list_of_differences(record_copy: dict) -> None:
    stored = copy.deepcopy(record_copy)
    for entry in stored["audit"]:
        entry["actor"] = "mallory"
        entry["at"] = "2000-01-01T00:00:00+00:00"
        entry["subject"] = "elsewhere"
        entry["detail"] = "rewritten"  # 6 entries x 4 fields: more than the cap of 20
    differences, _ = compare_records(record_copy, stored)
    assert len(differences) == 21
    assert differences[-1].startswith("... and ")
