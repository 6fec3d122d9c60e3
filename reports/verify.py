"""Offline verification of a signed batch record PDF, as an auditor would do it.

Stricter than a generic PDF validator: an eBMR holds the system's certification signature,
QA's approval signature in the next revision when the batch was dispositioned, and, for
PAdES B-LTA, a document timestamp (with the validation data it seals) in the revision after
that. The last of them must cover every byte of the file. pyHanko accepts other later
incremental updates (metadata, DSS) as harmless; for a batch record any revision ebr did
not write is an alteration.
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
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.fields import MDPPerm
from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
from pyhanko.sign.validation.dss import DocumentSecurityStore, NoDSSFoundError
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import (
    DocumentTimestampStatus,
    PdfSignatureStatus,
    SignatureCoverageLevel,
)
from pyhanko_certvalidator import ValidationContext

from reports.contract import APPROVAL_FIELD, RECORD_ATTACHMENT, SIGNATURE_FIELD
from reports.errors import SigningIdentityError, VerificationError, require_worker_thread
from reports.pki import load_root
from signatures.canonical import content_hash

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
    # QA's approval signature: the name in the signature (/Name), its reason, times.
    approval: dict[str, Any] | None = None
    # Time proven by the document timestamp that closes a PAdES B-LTA file.
    document_timestamp: str | None = None
    # B-B, B-T or B-LTA: what the file's signatures achieve.
    level: str = ""
    # One line per signature or timestamp in the file, in order.
    signatures: tuple[dict[str, Any], ...] = ()
    # Audit entries of the signed record whose chain hash was recomputed from the PDF.
    audit_entries_verified: int | None = None

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
            "approval": self.approval,
            "document_timestamp": self.document_timestamp,
            "level": self.level,
            "signatures": list(self.signatures),
            "audit_entries_verified": self.audit_entries_verified,
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
        embedded = list(reader.embedded_signatures)
    except Exception as exc:
        # Parser errors come in many types; for an auditor they all mean "damaged file".
        return _failed(f"the file is damaged and cannot be read as a PDF ({exc})")
    layout = _layout(embedded)
    if isinstance(layout, str):
        return _failed(layout)
    certification, approval, doc_timestamp = layout
    roots = [root, *extra_roots]
    try:
        context = _context(reader, [root])
        ts_context = _context(reader, roots)
        cert_status = validate_pdf_signature(
            certification, context, ts_validation_context=ts_context
        )
        approval_status = (
            validate_pdf_signature(approval, context, ts_validation_context=ts_context)
            if approval is not None
            else None
        )
        ts_status = (
            validate_pdf_timestamp(doc_timestamp, validation_context=ts_context)
            if doc_timestamp is not None
            else None
        )
    except Exception as exc:
        return _failed(f"the signatures cannot be evaluated; the file is damaged ({exc})")
    result = _judge(
        data, reader, certification, cert_status, trust_root,
        approval=(approval, approval_status) if approval is not None else None,
        doc_timestamp=(doc_timestamp, ts_status) if doc_timestamp is not None else None,
    )
    if stored_record is None or result.record is None:
        return result
    differences, later = compare_records(result.record, stored_record)
    return replace(
        result,
        record_matches=not differences,
        record_differences=differences,
        audit_entries_after_signing=later,
    )


Layout = tuple[EmbeddedPdfSignature, EmbeddedPdfSignature | None, EmbeddedPdfSignature | None]


def _layout(embedded: list[EmbeddedPdfSignature]) -> Layout | str:
    """The expected signatures, in order, or why the file is not shaped like an eBMR.

    An eBMR holds the system's certification signature, optionally QA's approval
    signature in the next revision, and optionally (B-LTA) a document timestamp in the
    revision after that. Anything else (more signatures, other fields, revisions in
    between) is not something ebr wrote.
    """
    regular = [s for s in embedded if s.sig_object_type == "/Sig"]
    stamps = [s for s in embedded if s.sig_object_type == "/DocTimeStamp"]
    if not regular:
        return "the file carries no signature: an eBMR is always certified by the system"
    names = [s.field_name for s in regular]
    if names[0] != SIGNATURE_FIELD or len(regular) > 2 or (
        len(regular) == 2 and names[1] != APPROVAL_FIELD
    ):
        return (
            f"expected the system's certification signature ({SIGNATURE_FIELD}) and at most "
            f"QA's approval signature ({APPROVAL_FIELD}); found signatures "
            f"{', '.join(str(n) for n in names)}"
        )
    if len(stamps) > 1:
        return f"expected at most one document timestamp, found {len(stamps)}"
    certification = regular[0]
    approval = regular[1] if len(regular) == 2 else None
    stamp = stamps[0] if stamps else None
    if approval is not None and approval.signed_revision != certification.signed_revision + 1:
        return (
            "QA's approval signature does not directly follow the certification: "
            f"{approval.signed_revision - certification.signed_revision - 1} revision(s) "
            "were added in between"
        )
    last = approval or certification
    if stamp is not None and stamp.signed_revision != last.signed_revision + 1:
        return (
            "the document timestamp does not directly follow the last signature: the file "
            "was changed in between"
        )
    return certification, approval, stamp


def _context(reader: PdfFileReader, roots: list[asn1_x509.Certificate]) -> ValidationContext:
    """Trust only `roots`; use the certificates and revocation data the file embeds
    (PAdES B-LTA's document security store), never the network."""
    kwargs: dict[str, Any] = {"trust_roots": roots, "allow_fetching": False}
    try:
        dss = DocumentSecurityStore.read_dss(reader)
    except (NoDSSFoundError, KeyError, TypeError, ValueError):
        return ValidationContext(**kwargs)
    return dss.as_validation_context(kwargs)


# Fields that legitimately differ between the signed snapshot and a fresh assembly:
# generated_at is the assembly time itself; equipment_register is the worker's register
# as it stood when the record was published (calibrations move on), and site (name and
# display time zone) is configuration of the process that assembled it: not database data.
_VOLATILE = frozenset({"generated_at", "equipment_register", "site"})
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


# What may follow a signature within an eBMR: the certification allows QA's approval to
# fill its field; every signature allows the B-LTA validation data and timestamp.
_ALLOWED_AFTER = {
    "certification_then_approval": (ModificationLevel.FORM_FILLING, ModificationLevel.NONE),
    "otherwise": (ModificationLevel.LTA_UPDATES, ModificationLevel.NONE),
}


def _judge(
    data: bytes,
    reader: PdfFileReader,
    signature: EmbeddedPdfSignature,
    status: PdfSignatureStatus,
    trust_root: Path,
    *,
    approval: tuple[EmbeddedPdfSignature, PdfSignatureStatus] | None = None,
    doc_timestamp: tuple[EmbeddedPdfSignature, DocumentTimestampStatus] | None = None,
) -> Verification:
    problems: list[str] = []
    chain: list[tuple[str, EmbeddedPdfSignature, Any]] = [("certification", signature, status)]
    if approval is not None:
        chain.append(("approval", *approval))
    if doc_timestamp is not None:
        chain.append(("document timestamp", *doc_timestamp))

    intact = valid = trusted = True
    for what, _embedded, st in chain:
        if not st.intact:
            intact = False
            problems.append(
                f"the {what} no longer matches the content it signed: the file was altered"
            )
        elif not st.valid:
            valid = False
            problems.append(f"the {what}'s signature value does not verify")
        if not st.trusted:
            trusted = False
            indication = getattr(st, "trust_problem_indic", None)
            why = f" ({indication.name.lower().replace('_', ' ')})" if indication else ""
            root_name = trust_root if what != "document timestamp" else "the TSA root(s) given"
            problems.append(f"the {what}'s certificate is not trusted under {root_name}{why}")

    # Coverage: the last element must cover every byte; each earlier one its own revision,
    # followed only by what ebr itself adds after it.
    last_what, last_sig, last_status = chain[-1]
    whole_file = last_status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    if not whole_file:
        if last_status.coverage == SignatureCoverageLevel.ENTIRE_REVISION:
            extra = len(data) - _signed_length(last_sig)
            revisions = _later_revisions(reader, last_sig)
            added = f" in {revisions} new revision(s)" if revisions else ""
            problems.append(
                f"modified after signing: {extra} bytes were appended{added} after the "
                f"{last_what}"
            )
        else:
            problems.append(
                f"modified after signing: the {last_what} does not cover the document it sits in"
            )
    for index, (what, _embedded, st) in enumerate(chain[:-1]):
        nxt = chain[index + 1][0]
        key = "certification_then_approval" if nxt == "approval" else "otherwise"
        level = getattr(st, "modification_level", None)
        covered = st.coverage == SignatureCoverageLevel.ENTIRE_REVISION
        if not covered or level not in _ALLOWED_AFTER[key]:
            whole_file = False
            shown = level.name.lower().replace("_", " ") if level is not None else "unknown"
            problems.append(
                f"modified after the {what}: the later revisions change more than the "
                f"{nxt} may ({shown})"
            )
        if getattr(st, "docmdp_ok", None) is False:
            whole_file = False
            problems.append(f"the changes after the {what} break its DocMDP permissions")

    record: dict | None = None
    audit_verified = None
    if intact and valid:
        record, record_problem = _signed_record(reader, signature.signed_revision)
        if record_problem:
            problems.append(record_problem)
        if record is not None:
            audit_verified, audit_problems = check_audit_entries(record)
            problems += audit_problems

    timestamped_at = _signature_timestamp(status, "certification", problems)
    approval_view = None
    if approval is not None:
        approval_view = _approval_view(*approval, problems)
        _check_approval_names_the_signer(approval_view, record, problems)
    elif signature.docmdp_level == MDPPerm.FILL_FORMS:
        # The certification left room for QA's approval, so one was made: without it the
        # file was cut back to the certified revision.
        problems.append(
            "QA's approval signature is missing: the certification was made for an approval "
            "to follow, and the file ends before it (truncated?)"
        )
    document_timestamp = None
    if doc_timestamp is not None:
        ts_status = doc_timestamp[1]
        if ts_status.intact and ts_status.valid and ts_status.trusted:
            document_timestamp = ts_status.timestamp.isoformat()
    level = _level(status, doc_timestamp is not None)

    signed_at = status.signer_reported_dt
    return Verification(
        intact=intact,
        valid=valid,
        trusted=trusted,
        covers_whole_file=whole_file,
        signer=_describe(status.signing_cert),
        signed_at=signed_at.isoformat() if signed_at else None,
        record=record,
        problems=tuple(problems),
        timestamped_at=timestamped_at,
        approval=approval_view,
        document_timestamp=document_timestamp,
        level=level,
        signatures=tuple(_summary(what, emb, st) for what, emb, st in chain),
        audit_entries_verified=audit_verified,
    )


def check_audit_entries(record: Mapping[str, Any]) -> tuple[int | None, list[str]]:
    """Recompute the chain hash of every audit entry in the record, offline.

    Each entry's hash covers its predecessor's hash and its own content (store.audit), so
    recomputing it shows the printed entries are the ones the site's chain holds; where two
    entries are neighbours in the site-wide chain (consecutive ids) their link is checked
    too. Records from before the chain fields were embedded give None (not checked).
    """
    entries = record.get("audit")
    if not isinstance(entries, list) or not entries:
        return None, []
    needed = ("key", "hashed_at", "prev_hash", "hash", "actor", "action", "subject", "detail")
    if not all(isinstance(e, Mapping) and all(k in e for k in needed) for e in entries):
        return None, []
    problems: list[str] = []
    previous: Mapping[str, Any] | None = None
    for number, entry in enumerate(entries, start=1):
        try:
            detail = json.loads(entry["detail"]) if isinstance(entry["detail"], str) else {}
        except ValueError:
            detail = None
        content = {
            "prev": entry["prev_hash"],
            "key": entry["key"],
            "at": entry["hashed_at"],
            "actor": entry["actor"],
            "action": entry["action"],
            "subject": entry["subject"],
            "detail": detail,
        }
        if detail is None or content_hash(content) != entry["hash"]:
            problems.append(
                f"audit entry {number} ({entry['action']}) does not match its chain hash"
            )
        elif (
            previous is not None
            and isinstance(entry.get("id"), int)
            and entry.get("id") == (previous.get("id") or 0) + 1
            and entry["prev_hash"] != previous["hash"]
        ):
            problems.append(f"audit entry {number} does not link to entry {number - 1}")
        previous = entry
    return len(entries), problems


def _signature_timestamp(status: PdfSignatureStatus, what: str, problems: list[str]) -> str | None:
    token = status.timestamp_validity
    if token is None:
        return None
    if token.intact and token.valid and token.trusted:
        return token.timestamp.isoformat()
    problems.append(
        f"the {what}'s timestamp does not verify or its authority is not trusted; pass the "
        "TSA's root certificate to trust it"
    )
    return None


def _approval_view(
    embedded: EmbeddedPdfSignature, status: PdfSignatureStatus, problems: list[str]
) -> dict[str, Any]:
    obj = embedded.sig_object
    signed_at = status.signer_reported_dt
    return {
        "name": str(obj.get("/Name", "")),
        "reason": str(obj.get("/Reason", "")),
        "signed_at": signed_at.isoformat() if signed_at else None,
        "timestamped_at": _signature_timestamp(status, "approval", problems),
        "certificate": _describe(status.signing_cert),
    }


def _check_approval_names_the_signer(
    approval: dict[str, Any], record: dict | None, problems: list[str]
) -> None:
    """The approval signature must name the QA signer of the signed record's disposition."""
    if record is None:
        return
    release = record.get("release")
    signature = release.get("signature") if isinstance(release, dict) else None
    if not isinstance(signature, dict):
        problems.append("the file has an approval signature but the record has no disposition")
        return
    name, username = str(signature.get("full_name", "")), str(signature.get("username", ""))
    if approval["name"] != name or f"({username})" not in approval["reason"]:
        problems.append(
            f"the approval signature names {approval['name']!r}, but the record's disposition "
            f"was signed by {name!r} ({username})"
        )


def _level(status: PdfSignatureStatus, has_doc_timestamp: bool) -> str:
    if has_doc_timestamp:
        return "B-LTA"
    return "B-T" if status.timestamp_validity is not None else "B-B"


def _summary(what: str, embedded: EmbeddedPdfSignature, status: Any) -> dict[str, Any]:
    level = getattr(status, "modification_level", None)
    return {
        "kind": what,
        "field": embedded.field_name,
        "revision": embedded.signed_revision,
        "intact": bool(status.intact),
        "valid": bool(status.valid),
        "trusted": bool(status.trusted),
        "coverage": status.coverage.name.lower() if status.coverage is not None else None,
        "later_changes": level.name.lower() if level is not None else None,
    }


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
