"""Offline verification of a signed batch record PDF, as an auditor would do it.

Stricter than a generic PDF validator: an eBMR has exactly one signature, the release seal,
and it must cover every byte of the file. pyHanko accepts some later incremental updates
(metadata, DSS) as harmless; for a released record any later revision is an alteration.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import PdfSignatureStatus, SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from reports.contract import RECORD_ATTACHMENT
from reports.errors import SigningIdentityError, VerificationError, require_worker_thread
from reports.pki import load_root

# The PDF header may legally be preceded by up to 1 KiB of junk (ISO 32000-1, 7.5.2 note).
_HEADER_WINDOW = 1024
_NAME_TREE_DEPTH = 16


@dataclass(frozen=True)
class Verification:
    """Outcome of checking one signed batch record.

    `record` is the embedded record.json as it was when signed (read from the signed
    revision, never from later additions); it is None when the signature does not vouch
    for it. `signed_at` is the time the signer's clock reported: ebr signs without a
    timestamp authority, so it is a claim, not a proof.
    """

    intact: bool
    valid: bool
    trusted: bool
    covers_whole_file: bool
    signer: str
    signed_at: str | None
    record: dict | None
    problems: tuple[str, ...]
    # Comparison with the record as the database holds it now (None: not compared, because
    # no stored record was given or the signature vouches for no embedded record).
    record_matches: bool | None = None
    record_differences: tuple[str, ...] = ()
    # Audit entries the database gained after signing (e.g. report.signed): expected, and
    # shown to the auditor, but not a mismatch.
    audit_entries_after_signing: int = 0
    # Time proven by a trusted RFC 3161 timestamp on the signature (PAdES B-T), if any.
    timestamped_at: str | None = None

    @property
    def ok(self) -> bool:
        return (
            self.intact
            and self.valid
            and self.trusted
            and self.covers_whole_file
            and not self.problems
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON data: what the API returns and `ebr report verify` prints."""
        return {
            "ok": self.ok,
            "intact": self.intact,
            "valid": self.valid,
            "trusted": self.trusted,
            "covers_whole_file": self.covers_whole_file,
            "signer": self.signer,
            "signed_at": self.signed_at,
            "problems": list(self.problems),
            "record_format": (self.record or {}).get("format"),
            "record_matches_database": self.record_matches,
            "record_differences": list(self.record_differences),
            "audit_entries_after_signing": self.audit_entries_after_signing,
            "timestamped_at": self.timestamped_at,
        }


def verify_pdf(
    pdf: bytes,
    trust_root: Path,
    stored_record: Mapping[str, Any] | None = None,
    *,
    tsa_roots: Sequence[Path] = (),
) -> Verification:
    """Check `pdf` against `trust_root` without any network access.

    With `stored_record` (the record as the database assembles it now), also report whether
    the signed, embedded record.json still says the same: see `compare_records`.
    `tsa_roots` are further roots trusted for signature timestamps only (a TSA is usually
    certified by another authority than the site's signing root).

    Never raises for a damaged or tampered PDF (the answer is then `ok == False` with the
    reasons in `problems`); raises VerificationError only when `pdf` is not a PDF at all or
    `trust_root` cannot be used.
    """
    require_worker_thread("verify_pdf")
    if not isinstance(pdf, bytes | bytearray | memoryview):
        raise VerificationError(f"verify_pdf needs the PDF as bytes, got {type(pdf).__name__}")
    data = bytes(pdf)
    if b"%PDF-" not in data[:_HEADER_WINDOW]:
        start = data[:16]
        raise VerificationError(
            f"this is not a PDF file (it starts with {start!r}, a PDF starts with '%PDF-'); "
            "check that the right file was given"
        )
    root = _trust_root(trust_root)
    extra_roots = [_trust_root(path) for path in tsa_roots]

    try:
        reader = PdfFileReader(io.BytesIO(data))
        signatures = reader.embedded_signatures
    except Exception as exc:
        # Parser errors come in many types; for an auditor they all mean "damaged file".
        return _failed(f"the file is damaged and cannot be read as a PDF ({exc})")
    if len(signatures) != 1:
        return _failed(
            f"expected exactly one signature (the release seal), found {len(signatures)}"
        )
    signature = signatures[0]

    try:
        status = validate_pdf_signature(
            signature,
            ValidationContext(trust_roots=[root], allow_fetching=False),
            ts_validation_context=ValidationContext(
                trust_roots=[root, *extra_roots], allow_fetching=False
            ),
        )
    except Exception as exc:
        return _failed(f"the signature cannot be evaluated; the file is damaged ({exc})")
    result = _judge(data, reader, signature, status, trust_root)
    if stored_record is None or result.record is None:
        return result
    differences, later = compare_records(result.record, stored_record)
    return replace(
        result,
        record_matches=not differences,
        record_differences=differences,
        audit_entries_after_signing=later,
    )


# Fields that legitimately differ between the signed snapshot and a fresh assembly:
# generated_at is the assembly time itself.
_VOLATILE = frozenset({"generated_at"})
_MAX_DIFFERENCES = 20


def compare_records(
    embedded: Mapping[str, Any], stored: Mapping[str, Any]
) -> tuple[tuple[str, ...], int]:
    """Differences between the signed record and the stored one, and the audit growth.

    Everything but `generated_at` must be equal, after a JSON round trip of `stored` so that
    both sides have the types the PDF can carry. The stored audit trail may have grown since
    signing (the publication itself is audited), so the signed audit must be a prefix of
    it; the number of later entries is returned, not reported as a difference.
    """
    try:
        current = json.loads(json.dumps(stored, sort_keys=True, allow_nan=False))
    except (TypeError, ValueError) as exc:
        return (f"the stored record is not plain JSON data ({exc})",), 0
    differences: list[str] = []
    for key in sorted((set(embedded) | set(current)) - _VOLATILE - {"audit"}):
        _diff(embedded.get(key, _ABSENT), current.get(key, _ABSENT), key, differences)
    signed_audit = embedded.get("audit")
    stored_audit = current.get("audit")
    later = 0
    if not isinstance(signed_audit, list) or not isinstance(stored_audit, list):
        _diff(signed_audit, stored_audit, "audit", differences)
    else:
        for index, entry in enumerate(signed_audit):
            if index >= len(stored_audit):
                differences.append(
                    f"audit[{index}]: signed entry missing from the database "
                    f"({len(signed_audit)} signed, {len(stored_audit)} stored)"
                )
                break
            _diff(entry, stored_audit[index], f"audit[{index}]", differences)
        later = max(0, len(stored_audit) - len(signed_audit))
    if len(differences) > _MAX_DIFFERENCES:
        extra = len(differences) - _MAX_DIFFERENCES
        differences = [*differences[:_MAX_DIFFERENCES], f"... and {extra} more differences"]
    return tuple(differences), later


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


_ABSENT = _Absent()


def _diff(signed: Any, stored: Any, where: str, out: list[str]) -> None:
    if isinstance(signed, dict) and isinstance(stored, dict):
        for key in sorted(set(signed) | set(stored)):
            _diff(signed.get(key, _ABSENT), stored.get(key, _ABSENT), f"{where}.{key}", out)
    elif isinstance(signed, list) and isinstance(stored, list) and len(signed) == len(stored):
        for index, (a, b) in enumerate(zip(signed, stored, strict=True)):
            _diff(a, b, f"{where}[{index}]", out)
    elif signed != stored or type(signed) is not type(stored):
        out.append(f"{where}: signed {_short(signed)}, database {_short(stored)}")


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, list) else f"a list of {len(value)}"
    return text if len(text) <= 80 else text[:77] + "..."


def _judge(
    data: bytes,
    reader: PdfFileReader,
    signature: EmbeddedPdfSignature,
    status: PdfSignatureStatus,
    trust_root: Path,
) -> Verification:
    problems: list[str] = []
    if not status.intact:
        problems.append(
            "the signed content was altered: its digest no longer matches the signature"
        )
    elif not status.valid:
        problems.append("the signature value does not verify with the signer's certificate")
    if not status.trusted:
        indication = status.trust_problem_indic
        why = f" ({indication.name.lower().replace('_', ' ')})" if indication else ""
        problems.append(f"the signer's certificate is not trusted under the root {trust_root}{why}")

    whole_file = status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    if not whole_file:
        if status.coverage == SignatureCoverageLevel.ENTIRE_REVISION:
            extra = len(data) - _signed_length(signature)
            revisions = _later_revisions(reader, signature)
            added = f" in {revisions} new revision(s)" if revisions else ""
            problems.append(
                f"modified after signing: {extra} bytes were appended{added} after the "
                "signed revision"
            )
        else:
            problems.append(
                "modified after signing: the signature does not cover the document it sits in"
            )

    record: dict | None = None
    if status.intact and status.valid:
        record, record_problem = _signed_record(reader, signature.signed_revision)
        if record_problem:
            problems.append(record_problem)

    timestamped_at = None
    token = status.timestamp_validity
    if token is not None:
        if token.intact and token.valid and token.trusted:
            timestamped_at = token.timestamp.isoformat()
        else:
            problems.append(
                "the signature's timestamp does not verify or its authority is not trusted; "
                "pass the TSA's root certificate to trust it"
            )

    signed_at = status.signer_reported_dt
    return Verification(
        intact=bool(status.intact),
        valid=bool(status.valid),
        trusted=bool(status.trusted),
        covers_whole_file=whole_file,
        signer=_describe(status.signing_cert),
        signed_at=signed_at.isoformat() if signed_at else None,
        record=record,
        problems=tuple(problems),
        timestamped_at=timestamped_at,
    )


def _failed(problem: str) -> Verification:
    return Verification(
        intact=False,
        valid=False,
        trusted=False,
        covers_whole_file=False,
        signer="",
        signed_at=None,
        record=None,
        problems=(problem,),
    )


def _trust_root(path: Path) -> asn1_x509.Certificate:
    try:
        cert = load_root(Path(path))
    except SigningIdentityError as exc:
        raise VerificationError(f"cannot use the trust root: {exc}") from exc
    return asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))


def _signed_length(signature: EmbeddedPdfSignature) -> int:
    _, _, start2, len2 = (int(x) for x in signature.byte_range)
    return start2 + len2


def _later_revisions(reader: PdfFileReader, signature: EmbeddedPdfSignature) -> int:
    return reader.xrefs.total_revisions - 1 - signature.signed_revision


def _describe(cert: asn1_x509.Certificate | None) -> str:
    if cert is None:
        return ""
    subject = cert.subject.native
    name = subject.get("common_name") or cert.subject.human_friendly
    organisation = subject.get("organization_name")
    return f"{name} ({organisation})" if organisation and organisation not in name else name


def _signed_record(reader: PdfFileReader, revision: int) -> tuple[dict | None, str | None]:
    """record.json as of the signed revision, or the reason it cannot be given."""
    try:
        catalog = reader.get_historical_root(revision)
        names = catalog["/Names"]["/EmbeddedFiles"]
        matches = list(_name_tree_lookup(names, RECORD_ATTACHMENT, depth=0))
    except (KeyError, TypeError, ValueError):
        return None, f"the signed document has no embedded {RECORD_ATTACHMENT}"
    except Exception as exc:
        return None, f"the embedded files of the signed document cannot be read ({exc})"
    if not matches:
        return None, f"the signed document has no embedded {RECORD_ATTACHMENT}"
    if len(matches) > 1:
        return None, f"the signed document embeds {len(matches)} files named {RECORD_ATTACHMENT}"
    try:
        payload = matches[0]["/EF"]["/F"].data
        record: Any = json.loads(payload.decode("utf-8"))
    except Exception as exc:
        return None, f"the embedded {RECORD_ATTACHMENT} is not readable JSON ({exc})"
    if not isinstance(record, dict):
        return None, f"the embedded {RECORD_ATTACHMENT} is not a JSON object"
    return record, None


def _name_tree_lookup(node: generic.DictionaryObject, wanted: str, depth: int):
    # Depth-limited: the tree comes from the file under examination, which may be hostile.
    if depth > _NAME_TREE_DEPTH:
        raise ValueError("embedded file name tree is nested too deeply")
    if "/Names" in node:
        entries = node["/Names"]
        for index in range(0, len(entries) - 1, 2):
            if str(entries[index]) == wanted:
                yield entries[index + 1]
    if "/Kids" in node:
        for kid in node["/Kids"]:
            yield from _name_tree_lookup(kid, wanted, depth + 1)
