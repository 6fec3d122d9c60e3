"""Checking a signed eBMR PDF that someone hands to QA or an auditor.

The upload is verified exactly as `ebr report verify` does it offline (signature intact,
valid, trusted under the site's root, covering every byte), and then compared with what
the database holds now: the embedded record, the published file's hash and the audit chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, UploadFile
from sqlmodel import Session

from api.deps import ServicesDep, UserDep, require_any_role
from api.errors import ApiError
from reports.contract import RECORD_FORMAT
from reports.pki import ROOT_FILE, TSA_ROOT_FILE
from reports.publish import sha256_hex
from reports.verify import Verification, VerificationError, verify_pdf
from settings.config import Settings
from store import audit
from store.batch_record import BatchRecordStore

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])

VERIFIERS = ("auditor", "qa")
# A 500-step record is under 1 MiB (docs/reports.md); anything far beyond that is not an
# ebr record, and reading it whole into memory would let one request exhaust the API.
MAX_PDF_BYTES = 64 * 1024 * 1024


@router.post("/verify")
def verify_report(
    user: UserDep,
    svc: ServicesDep,
    file: Annotated[UploadFile, File(description="the signed eBMR PDF")],
) -> dict[str, Any]:
    # A plain `def`: verification is blocking (pyHanko runs its own event loop), so FastAPI
    # must run it on its thread pool, never on the server's event loop.
    require_any_role(user, *VERIFIERS)
    data = file.file.read(MAX_PDF_BYTES + 1)
    if len(data) > MAX_PDF_BYTES:
        raise ApiError(
            413, "too_large", f"The PDF is larger than {MAX_PDF_BYTES // (1024 * 1024)} MiB."
        )
    try:
        root, tsa_roots = verification_roots(svc.settings)
        return verify_against_store(data, root, svc.records, tsa_roots=tsa_roots)
    except VerificationError as exc:
        raise ApiError(422, "not_verifiable", str(exc)) from exc


def verification_roots(settings: Settings) -> tuple[Path, list[Path]]:
    """The site's signing root and the TSA roots to trust for its timestamps.

    The signing root is EBR_SIGNING_ROOT, else the development PKI's root.pem; TSA roots
    are EBR_TSA_ROOT and the development TSA's root when the PKI holds one.
    """
    root = settings.signing_root or settings.pki_dir / ROOT_FILE
    tsa_roots = [settings.tsa_root] if settings.tsa_root else []
    local = settings.pki_dir / TSA_ROOT_FILE
    if local.exists() and local not in tsa_roots:
        tsa_roots.append(local)
    return root, tsa_roots


def verify_against_store(
    data: bytes, root: Path, records: BatchRecordStore, *, tsa_roots: Sequence[Path] = ()
) -> dict[str, Any]:
    """Verify `data` offline, then compare it with the batch the store holds, if any.

    Shared by this route and `ebr report verify --db`, so both report the same fields.
    Raises VerificationError when `data` is not a PDF or `root` is unusable.
    """
    first = verify_pdf(data, root, tsa_roots=tsa_roots)
    batch_id = _batch_id(first)
    batch = records.get_batch(batch_id) if batch_id else None
    result, chain = first, None
    if batch is not None:
        # Second pass with the stored record: cheap next to rendering, and keeps the
        # comparison in one place (reports.verify.compare_records).
        stored = records.assemble_record(batch.batch_id)
        result = verify_pdf(data, root, stored, tsa_roots=tsa_roots)
        with Session(records.engine) as session:
            chain = audit.verify_chain(session)
    digest = sha256_hex(data)
    return {
        **result.as_dict(),
        "sha256": digest,
        "batch_id": batch_id,
        "batch_in_database": batch is not None,
        "published_copy": (batch.report_sha256 == digest) if batch is not None else None,
        "audit_chain_intact": chain.ok if chain is not None else None,
        "audit_chain_message": chain.describe() if chain is not None else None,
    }


def _batch_id(result: Verification) -> str | None:
    """The batch the signed record is about; None when the signature vouches for none."""
    record = result.record
    if record is None or record.get("format") != RECORD_FORMAT:
        return None
    batch = record.get("batch")
    batch_id = batch.get("batch_id") if isinstance(batch, dict) else None
    return batch_id if isinstance(batch_id, str) and batch_id else None
