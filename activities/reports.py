"""Render, sign and publish the eBMR. Only a signed PDF ever reaches the final path."""

from __future__ import annotations

from pathlib import Path

from temporalio import activity

from reports.pki import SigningIdentity
from reports.publish import sha256_hex, write_atomically
from reports.render import render_batch_record
from reports.sign import sign_pdf
from store.batch_record import BatchRecordStore
from store.recipes import RecipeStore
from workflows.messages import ReportInput, ReportRef


class ReportActivities:
    def __init__(
        self,
        store: BatchRecordStore,
        recipes: RecipeStore,
        reports_dir: Path,
        identity: SigningIdentity,
        site_name: str = "",
    ) -> None:
        self.store = store
        self.recipes = recipes
        self.reports_dir = reports_dir
        self.identity = identity
        self.site_name = site_name

    @activity.defn(name="publish_report")
    def publish_report(self, inp: ReportInput) -> ReportRef:
        batch = self.store.get_batch(inp.batch_id)
        if batch is None:
            raise ValueError(f"Batch {inp.batch_id} is not in the record store.")
        # A retry after the file and its row were written returns the same document.
        if batch.report_path and batch.report_sha256 and Path(batch.report_path).exists():
            existing = Path(batch.report_path).read_bytes()
            if sha256_hex(existing) == batch.report_sha256:
                return ReportRef(batch.report_path, batch.report_sha256, batch.report_pages or 0)
        record = self.store.assemble_record(inp.batch_id)
        recipe = self.recipes.get(batch.recipe_id, batch.recipe_version)
        rendered = render_batch_record(record, recipe.source_text if recipe else "")
        activity.heartbeat("rendered")
        signed = sign_pdf(rendered.pdf, self.identity, location=self.site_name)
        path = self.reports_dir / f"{inp.batch_id}.pdf"
        self.reports_dir.mkdir(parents=True, exist_ok=True)
        write_atomically(path, signed)
        digest = sha256_hex(signed)
        self.store.attach_report(inp.batch_id, str(path), digest, rendered.pages)
        return ReportRef(path=str(path), sha256=digest, pages=rendered.pages)
