"""Sign the rendered record and verify it offline the way an auditor would."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader

from reports.errors import ReportError, SigningError, SigningIdentityError, VerificationError
from reports.pki import SigningIdentity, ensure_signing_identity
from reports.render import RenderedPdf
from reports.sign import sign_pdf
from reports.verify import Verification, verify_pdf


@pytest.fixture(scope="module")
def signed(rendered: RenderedPdf, identity: SigningIdentity) -> bytes:
    return sign_pdf(rendered.pdf, identity, location="Site A, line 2")


@pytest.fixture(scope="module")
def other_identity(tmp_path_factory: pytest.TempPathFactory) -> SigningIdentity:
    return ensure_signing_identity(
        tmp_path_factory.mktemp("other-pki"), b"other", organisation="somebody else"
    )


def _assert_not_ok(result: Verification) -> None:
    assert not result.ok
    assert result.problems


def test_round_trip_is_ok_and_returns_the_record(
    signed: bytes, identity: SigningIdentity, record_copy: dict
) -> None:
    result = verify_pdf(signed, identity.root_cert)

    assert result.ok, result.problems
    assert (result.intact, result.valid, result.trusted, result.covers_whole_file) == (
        True,
        True,
        True,
        True,
    )
    assert result.problems == ()
    assert result.record == record_copy
    assert "batch record signing" in result.signer
    assert result.signed_at is not None and result.signed_at.endswith("+00:00")


def test_signature_is_an_invisible_pades_certification(signed: bytes) -> None:
    reader = PdfFileReader(io.BytesIO(signed))
    (signature,) = reader.embedded_signatures
    assert signature.field_name == "ebr-release"
    assert signature.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
    assert signature.sig_object["/Reason"] == "Batch record release"
    assert signature.sig_object["/Location"] == "Site A, line 2"
    assert signature.docmdp_level is not None and signature.docmdp_level.value == 1
    widget = signature.sig_field
    assert [float(x) for x in widget["/Rect"]] == [0, 0, 0, 0]
    assert int(widget["/F"]) & 4  # Print flag, required by PDF/A


def test_signed_file_still_declares_pdfa_3b(signed: bytes) -> None:
    reader = PdfFileReader(io.BytesIO(signed))
    xmp = reader.root["/Metadata"].data
    assert b'pdfaid:part="3"' in xmp
    assert b'pdfaid:conformance="B"' in xmp
    # ECDSA would make pyHanko declare PDF 2.0 here, contradicting PDF/A-3.
    assert "/Version" not in reader.root
    assert "/Info" not in reader.trailer
    assert signed.startswith(b"%PDF-1.7")


def test_flipped_byte_in_signed_range_is_detected(signed: bytes, identity: SigningIdentity) -> None:
    reader = PdfFileReader(io.BytesIO(signed))
    first_range_end = int(reader.embedded_signatures[0].byte_range[1])
    # Flip a byte inside the largest stream of the signed range (an embedded font): the
    # file still parses, so it is the signature check, not the parser, that must object.
    streams = [
        (end - match.end(), match.end())
        for match in re.finditer(rb">>\s*stream\r?\n", signed[:first_range_end])
        if (end := signed.find(b"endstream", match.end())) < first_range_end
    ]
    length, begin = max(streams)
    position = begin + length // 2
    tampered = bytearray(signed)
    tampered[position] ^= 0x01

    result = verify_pdf(bytes(tampered), identity.root_cert)

    _assert_not_ok(result)
    assert result.intact is False
    assert result.record is None
    assert any("altered" in problem for problem in result.problems)


def test_incremental_update_after_signing_is_detected(
    signed: bytes, identity: SigningIdentity, record_copy: dict
) -> None:
    writer = IncrementalPdfFileWriter(io.BytesIO(signed))
    writer.document_meta.title = "Nothing to see here"
    writer.update_root()  # without a changed object pyHanko writes no new revision at all
    out = io.BytesIO()
    writer.write(out)

    assert len(out.getvalue()) > len(signed)

    result = verify_pdf(out.getvalue(), identity.root_cert)

    _assert_not_ok(result)
    assert result.intact and result.valid and result.trusted
    assert result.covers_whole_file is False
    assert any("modified after signing" in problem for problem in result.problems)
    # What the signature vouches for is still reported, for the auditor's comparison.
    assert result.record == record_copy


def test_record_swapped_in_a_later_revision_is_not_returned(
    signed: bytes, identity: SigningIdentity, record_copy: dict
) -> None:
    writer = IncrementalPdfFileWriter(io.BytesIO(signed))
    names = writer.root["/Names"]["/EmbeddedFiles"]["/Names"]
    spec_ref = names.raw_get(1)
    forged = generic.StreamObject(
        {generic.pdf_name("/Type"): generic.pdf_name("/EmbeddedFile")},
        stream_data=b'{"format": "forged"}',
    )
    spec = spec_ref.get_object()
    spec["/EF"][generic.pdf_name("/F")] = writer.add_object(forged)
    writer.mark_update(spec_ref)
    out = io.BytesIO()
    writer.write(out)

    result = verify_pdf(out.getvalue(), identity.root_cert)

    _assert_not_ok(result)
    assert any("modified after signing" in problem for problem in result.problems)
    assert result.record == record_copy


def test_trailing_bytes_are_detected(signed: bytes, identity: SigningIdentity) -> None:
    result = verify_pdf(signed + b"\n% appended note\n", identity.root_cert)
    _assert_not_ok(result)
    assert any("modified after signing" in problem for problem in result.problems)


def test_truncated_file_is_reported_not_raised(signed: bytes, identity: SigningIdentity) -> None:
    _assert_not_ok(verify_pdf(signed[: len(signed) // 2], identity.root_cert))


def test_untrusted_root_is_not_trusted(
    rendered: RenderedPdf, identity: SigningIdentity, other_identity: SigningIdentity
) -> None:
    foreign = sign_pdf(rendered.pdf, other_identity)

    result = verify_pdf(foreign, identity.root_cert)

    _assert_not_ok(result)
    assert result.trusted is False
    assert result.intact and result.valid and result.covers_whole_file
    assert "somebody else" in result.signer
    assert any("not trusted" in problem for problem in result.problems)


def test_unsigned_pdf_is_not_ok(rendered: RenderedPdf, identity: SigningIdentity) -> None:
    result = verify_pdf(rendered.pdf, identity.root_cert)
    _assert_not_ok(result)
    assert "no signature" in result.problems[0]


def test_a_sealed_record_is_not_signed_again(
    signed: bytes, other_identity: SigningIdentity
) -> None:
    with pytest.raises(SigningError, match="already signed"):
        sign_pdf(signed, other_identity)


@pytest.mark.parametrize("garbage", [b"", b"hello world", b"\x89PNG\r\n\x1a\n" + b"\0" * 64])
def test_garbage_raises_verification_error(garbage: bytes, identity: SigningIdentity) -> None:
    with pytest.raises(VerificationError, match="not a PDF"):
        verify_pdf(garbage, identity.root_cert)


def test_unusable_trust_root_raises(signed: bytes, tmp_path: Path) -> None:
    with pytest.raises(VerificationError, match="trust root"):
        verify_pdf(signed, tmp_path / "missing-root.pem")


def test_wrong_passphrase_fails_signing(rendered: RenderedPdf, identity: SigningIdentity) -> None:
    wrong = SigningIdentity(identity.root_cert, identity.signer_p12, b"wrong")
    with pytest.raises(SigningIdentityError, match="wrong passphrase"):
        sign_pdf(rendered.pdf, wrong)


def test_signer_not_issued_by_root_fails_signing(
    rendered: RenderedPdf, identity: SigningIdentity, other_identity: SigningIdentity
) -> None:
    mismatched = SigningIdentity(other_identity.root_cert, identity.signer_p12, b"test passphrase")
    with pytest.raises(ReportError, match="does not validate"):
        sign_pdf(rendered.pdf, mismatched)


def test_blocking_calls_refuse_an_event_loop_thread(
    signed: bytes, identity: SigningIdentity
) -> None:
    async def on_the_loop() -> None:
        verify_pdf(signed, identity.root_cert)

    with pytest.raises(ReportError, match="worker thread"):
        asyncio.run(on_the_loop())
