"""The published eBMR: the system's certification, QA's approval signature naming the QA
signer, PAdES B-T and B-LTA with the development PKI's in-process TSA; tampered copies."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader

from reports.contract import APPROVAL_FIELD, SIGNATURE_FIELD
from reports.pki import LocalTsa, SigningIdentity, ensure_local_tsa, load_tsa_material
from reports.render import RenderedPdf
from reports.sign import Approval, local_timestamping, seal_record
from reports.verify import verify_pdf


@pytest.fixture(scope="module")
def tsa(identity: SigningIdentity) -> LocalTsa:
    return ensure_local_tsa(identity.root_cert.parent, b"test passphrase")


@pytest.fixture(scope="module")
def approval(record_copy: dict) -> Approval:
    found = Approval.from_record(record_copy)
    assert found is not None
    return found


@pytest.fixture(scope="module")
def approved(rendered: RenderedPdf, identity: SigningIdentity, approval: Approval) -> bytes:
    return seal_record(rendered.pdf, identity, approval=approval, location="Test plant")


@pytest.fixture(scope="module")
def lta(
    rendered: RenderedPdf, identity: SigningIdentity, approval: Approval, tsa: LocalTsa
) -> bytes:
    return seal_record(
        rendered.pdf, identity, approval=approval, timestamping=local_timestamping(tsa, lta=True)
    )


def _signatures(pdf: bytes) -> list:
    return list(PdfFileReader(io.BytesIO(pdf)).embedded_signatures)


def _append_update(pdf: bytes) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    writer.root["/Lang"] = writer.root.get("/Lang", "en")  # a harmless-looking change
    writer.update_root()
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_qa_approval_is_a_second_signature_naming_the_qa_signer(
    approved: bytes, identity: SigningIdentity, record_copy: dict
) -> None:
    certification, second = _signatures(approved)
    assert certification.field_name == SIGNATURE_FIELD
    assert second.field_name == APPROVAL_FIELD
    assert str(second.sig_object["/Name"]) == "Quinn Quality"
    reason = str(second.sig_object["/Reason"])
    assert reason.startswith("Released by Quinn Quality (qa)")
    assert record_copy["release"]["signature"]["content_sha256"] in reason
    result = verify_pdf(approved, identity.root_cert, record_copy)
    assert result.ok, result.problems
    assert result.record_matches
    assert result.approval is not None and result.approval["name"] == "Quinn Quality"
    assert result.level == "B-B"
    assert [s["kind"] for s in result.signatures] == ["certification", "approval"]


def test_file_cut_back_to_the_certified_revision_is_not_verified(
    approved: bytes, identity: SigningIdentity
) -> None:
    certification = _signatures(approved)[0]
    _, _, start, length = (int(x) for x in certification.byte_range)
    truncated = approved[: start + length]
    result = verify_pdf(truncated, identity.root_cert)
    assert not result.ok
    assert any("approval signature is missing" in p for p in result.problems)


def test_approval_naming_someone_else_than_the_record_is_a_problem(
    rendered: RenderedPdf, identity: SigningIdentity, approval: Approval
) -> None:
    forged = dataclasses.replace(approval, full_name="Mallory", username="mallory")
    result = verify_pdf(seal_record(rendered.pdf, identity, approval=forged), identity.root_cert)
    assert not result.ok
    assert any("approval signature names 'Mallory'" in p for p in result.problems)


@pytest.mark.parametrize("fixture", ["approved", "lta"])
def test_any_changed_byte_or_added_update_is_invalid(
    fixture: str, request: pytest.FixtureRequest, identity: SigningIdentity, tsa: LocalTsa
) -> None:
    pdf: bytes = request.getfixturevalue(fixture)
    roots = [tsa.root_cert]
    assert verify_pdf(pdf, identity.root_cert, tsa_roots=roots).ok
    record_at = pdf.index(b"Quinn Quality")  # inside the signed content of the first revision
    flipped = bytearray(pdf)
    flipped[record_at] ^= 0x01
    assert not verify_pdf(bytes(flipped), identity.root_cert, tsa_roots=roots).ok
    updated = verify_pdf(_append_update(pdf), identity.root_cert, tsa_roots=roots)
    assert not updated.ok
    assert any("modified after signing" in p for p in updated.problems)
    assert not verify_pdf(pdf + b"\n%%EOF\n", identity.root_cert, tsa_roots=roots).ok


def test_timestamped_signatures_are_pades_b_t(
    rendered: RenderedPdf, identity: SigningIdentity, approval: Approval, tsa: LocalTsa
) -> None:
    pdf = seal_record(rendered.pdf, identity, approval=approval,
                      timestamping=local_timestamping(tsa))
    result = verify_pdf(pdf, identity.root_cert, tsa_roots=[tsa.root_cert])
    assert result.ok, result.problems
    assert result.level == "B-T"
    assert result.timestamped_at is not None
    assert result.approval is not None and result.approval["timestamped_at"] is not None


def test_lta_embeds_validation_data_and_ends_with_a_document_timestamp(
    lta: bytes, identity: SigningIdentity, tsa: LocalTsa
) -> None:
    reader = PdfFileReader(io.BytesIO(lta))
    assert "/DSS" in reader.root
    kinds = [s.sig_object_type for s in reader.embedded_signatures]
    assert kinds == ["/Sig", "/Sig", "/DocTimeStamp"]
    # The document timestamp is the last revision: nothing follows it unsigned.
    assert reader.embedded_signatures[-1].signed_revision == reader.xrefs.total_revisions - 1
    result = verify_pdf(lta, identity.root_cert, tsa_roots=[tsa.root_cert])
    assert result.ok, result.problems
    assert result.level == "B-LTA" and result.document_timestamp is not None


def test_lta_without_the_tsa_root_is_not_trusted(lta: bytes, identity: SigningIdentity) -> None:
    result = verify_pdf(lta, identity.root_cert)
    assert not result.ok
    assert any("document timestamp" in p for p in result.problems)


def test_aborted_batch_without_disposition_has_only_the_certification(
    rendered: RenderedPdf, identity: SigningIdentity, tsa: LocalTsa
) -> None:
    pdf = seal_record(rendered.pdf, identity, timestamping=local_timestamping(tsa, lta=True))
    assert [s.field_name for s in _signatures(pdf) if s.sig_object_type == "/Sig"] == [
        SIGNATURE_FIELD
    ]
    result = verify_pdf(pdf, identity.root_cert, tsa_roots=[tsa.root_cert])
    assert result.ok, result.problems
    assert result.approval is None and result.level == "B-LTA"


def test_development_tsa_is_created_once_with_a_timestamping_certificate(
    tsa: LocalTsa, identity: SigningIdentity
) -> None:
    again = ensure_local_tsa(identity.root_cert.parent, b"test passphrase")
    assert again == tsa
    cert = load_tsa_material(tsa).cert
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert usage.critical and list(usage.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    assert oct(Path(tsa.tsa_p12).stat().st_mode & 0o777) == "0o600"


def test_sealing_appends_to_the_rendered_bytes_and_changes_none_of_them(
    rendered: RenderedPdf, identity: SigningIdentity, approval: Approval, approved: bytes
) -> None:
    # Regenerating from the same record gives the same rendered bytes (test_content), and
    # every published copy starts with exactly those bytes: copies differ only in the
    # signatures appended after them.
    again = seal_record(rendered.pdf, identity, approval=approval, location="Test plant")
    assert approved.startswith(rendered.pdf) and again.startswith(rendered.pdf)
    assert again != approved  # signing times and signature values
