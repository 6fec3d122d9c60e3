"""Render, sign and publish the eBMR. Only a signed PDF ever reaches the final path.

A released batch whose signing key is missing or broken stays released with its signature
pending: the activity fails with a retryable `SigningUnavailable` error (its message says
what to fix), Temporal retries it, and the first attempt after the key is repaired
publishes the one signed PDF. Nothing is written to the reports directory meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from reports.errors import RenderError, SigningError
from reports.pkcs11 import check_pkcs11_settings
from reports.pki import Pkcs11Identity, load_root, load_signer_material
from reports.publish import sha256_hex, write_atomically
from reports.sign import Approval, SigningSource, Timestamping, http_timestamping, seal_record
from store.batch_record import BatchRecordStore
from store.recipes import RecipeStore
from workflows.messages import BatchEvent, ReportInput, ReportRef

log = logging.getLogger(__name__)

# ApplicationError types the workflow's retry policy can name.
SIGNING_UNAVAILABLE = "SigningUnavailable"
RECORD_NOT_RENDERABLE = "RecordNotRenderable"
# Someone has to repair the key: retrying every few seconds only floods the history and the
# log. Temporal still caps the wait at the policy's maximum_interval.
SIGNING_RETRY_DELAY = timedelta(minutes=5)
SIGNATURE_PENDING = "report.signature_pending"

IdentitySource = SigningSource | Callable[[], SigningSource]
TimestampingSource = Timestamping | Callable[[], Timestamping | None] | None
# equipment id -> its register entry as plain data (class, serial, calibration, cleaning)
EquipmentLookup = Callable[[str], dict[str, Any] | None]


class ReportActivities:
    def __init__(
        self,
        store: BatchRecordStore,
        recipes: RecipeStore,
        reports_dir: Path,
        identity: IdentitySource,
        site_name: str = "",
        timestamp_url: str | None = None,
        timestamp_roots: Sequence[Path] = (),
        *,
        timestamping: TimestampingSource = None,
        equipment: EquipmentLookup | None = None,
    ) -> None:
        """`identity` may be a callable so that a worker starts, and batches run, while the
        signing key is broken; it is then resolved again on every attempt.

        With `timestamp_url` (or a `timestamping` source: an HTTP TSA or the development
        PKI's in-process TSA, optionally B-LTA) every report is PAdES B-T or better; a TSA
        outage, like a broken key, leaves the signature pending rather than publishing a
        weaker document. `equipment` looks up the register entry of each piece of equipment
        the batch used, printed with its calibration status.
        """
        self.store = store
        self.recipes = recipes
        self.reports_dir = reports_dir
        self.identity = identity
        self.site_name = site_name
        if timestamping is None and timestamp_url:
            timestamping = http_timestamping(timestamp_url, timestamp_roots)
        self.timestamping = timestamping
        self.equipment = equipment

    @activity.defn(name="publish_report")
    def publish_report(self, inp: ReportInput) -> ReportRef:
        batch = self.store.get_batch(inp.batch_id)
        if batch is None:
            raise ApplicationError(
                f"Batch {inp.batch_id} is not in the record store.",
                type="RecordError",
                non_retryable=True,
            )
        # A retry after the file and its row were written returns the same document.
        if batch.report_path and batch.report_sha256 and Path(batch.report_path).exists():
            existing = Path(batch.report_path).read_bytes()
            if sha256_hex(existing) == batch.report_sha256:
                return ReportRef(batch.report_path, batch.report_sha256, batch.report_pages or 0)

        # Check the key before rendering: a 500-step record takes over a minute to lay out,
        # and every retry while the key is broken would repeat that for nothing.
        identity = self._usable_identity(inp.batch_id, batch.state)
        record = self.store.assemble_record(inp.batch_id)
        if self.equipment is not None:
            record["equipment_register"] = self._register_snapshot(record)
        recipe = self.recipes.get(batch.recipe_id, batch.recipe_version)
        try:
            # Imported here: WeasyPrint loads Pango and cairo (~1-2 s), which a worker
            # restarted after a crash should not pay before it polls again.
            from reports.render import render_batch_record

            rendered = render_batch_record(record, recipe.source_text if recipe else "")
        except RenderError as exc:
            # The same record and code fail the same way: retrying cannot help, a fix can.
            raise ApplicationError(
                f"The batch record of {inp.batch_id} cannot be rendered: {exc}",
                type=RECORD_NOT_RENDERABLE,
                non_retryable=True,
            ) from exc
        activity.heartbeat("rendered")
        try:
            timestamping = self.timestamping() if callable(self.timestamping) else self.timestamping
            signed = seal_record(
                rendered.pdf,
                identity,
                approval=Approval.from_record(record),
                location=self.site_name,
                timestamping=timestamping,
            )
        except SigningError as exc:
            raise self._pending(inp.batch_id, batch.state, exc) from exc
        activity.heartbeat("signed")
        path = self.reports_dir / f"{inp.batch_id}.pdf"
        self.reports_dir.mkdir(parents=True, exist_ok=True)
        write_atomically(path, signed)
        digest = sha256_hex(signed)
        self.store.attach_report(inp.batch_id, str(path), digest, rendered.pages)
        return ReportRef(path=str(path), sha256=digest, pages=rendered.pages)

    def _usable_identity(self, batch_id: str, state: str) -> SigningSource:
        try:
            identity = self.identity() if callable(self.identity) else self.identity
            if isinstance(identity, Pkcs11Identity):
                check_pkcs11_settings(identity)
            else:
                load_signer_material(identity)
            load_root(identity.root_cert)
        except SigningError as exc:
            raise self._pending(batch_id, state, exc) from exc
        return identity

    def _register_snapshot(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        """The register entries of every piece of equipment the batch was bound to."""
        assert self.equipment is not None
        ids = sorted({str(v) for v in (record["batch"].get("equipment") or {}).values()})
        entries = []
        for equipment_id in ids:
            try:
                entry = self.equipment(equipment_id)
            except Exception as exc:  # an unknown id must not stop the record: say so in it
                entry = {"equipment_id": equipment_id, "description": f"not in register: {exc}"}
            if entry is not None:
                entries.append(entry)
        return entries

    def _pending(self, batch_id: str, state: str, exc: SigningError) -> ApplicationError:
        """Record once that the signature is pending, and the retryable error to raise."""
        message = (
            f"The eBMR of batch {batch_id} ({state}) is not published: signature pending. "
            f"Signing failed: {exc}. Repair the signing key, its certificate or the timestamp "
            "authority; the report is retried automatically and published, signed, on the "
            "first attempt that succeeds."
        )
        log.error("%s", message)
        # Idempotent on its key: one audit entry for the whole outage, not one per retry.
        self.store.record_event(
            BatchEvent(
                batch_id=batch_id,
                key=f"{batch_id}/{SIGNATURE_PENDING}",
                action=SIGNATURE_PENDING,
                state=state,
                actor="system",
                at=datetime.now(UTC).isoformat(timespec="seconds"),
                detail={"error": str(exc)},
            )
        )
        return ApplicationError(
            message, type=SIGNING_UNAVAILABLE, next_retry_delay=SIGNING_RETRY_DELAY
        )
