"""`ebr report …`: signed eBMR documents."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import load_settings

report_app = typer.Typer(help="Signed eBMR documents.", no_args_is_help=True)


@report_app.command("verify")
def report_verify(
    pdf: Annotated[Path, typer.Argument(help="the signed eBMR PDF")],
    trust: Annotated[Path | None, typer.Option(help="root certificate (PEM) to trust")] = None,
    db: Annotated[
        bool,
        typer.Option(
            "--db/--no-db",
            help="also compare the embedded record with this site's database "
            "(EBR_DATABASE_URL) and check its audit chain",
        ),
    ] = False,
    tsa_root: Annotated[
        list[Path] | None,
        typer.Option(help="root certificate (PEM) of a timestamp authority to trust; repeatable"),
    ] = None,
) -> None:
    """Verify an eBMR offline: signature intact, valid, trusted, and covering the whole file.

    Exit status: 0 verified, 1 not verified (or differs from the database), 2 unusable input.
    """
    from api.routes_reports import verification_roots
    from reports.verify import VerificationError, verify_pdf

    settings = load_settings() if (db or trust is None) else None
    tsa_roots = list(tsa_root or ())
    if trust is None:
        # This site's own roots: the signing root and its TSA roots.
        root, site_tsa_roots = verification_roots(settings)  # type: ignore[arg-type]
        tsa_roots += [r for r in site_tsa_roots if r not in tsa_roots]
    else:
        root = trust
    try:
        data = pdf.read_bytes()
        if db:
            from api.routes_reports import verify_against_store
            from store.batch_record import BatchRecordStore
            from store.db import make_engine

            engine = make_engine(settings.resolved_database_url)  # type: ignore[union-attr]
            try:
                store = BatchRecordStore(
                    engine,
                    site_name=settings.site_name,  # type: ignore[union-attr]
                    site_timezone=settings.site_timezone,  # type: ignore[union-attr]
                )
                report = verify_against_store(data, root, store, tsa_roots=tsa_roots)
            finally:
                engine.dispose()
        else:
            report = verify_pdf(data, root, tsa_roots=tsa_roots).as_dict()
    except (OSError, VerificationError) as exc:
        typer.echo(f"ebr report verify: {exc}", err=True)
        raise typer.Exit(2) from exc
    ok = _print(report)
    raise typer.Exit(0 if ok else 1)


def _print(report: dict[str, Any]) -> bool:
    """Print the verification as lines a person reads; return the overall verdict."""
    typer.echo(f"certified by: {report['signer']}; signed at: {report['signed_at']}")
    if report.get("timestamped_at"):
        typer.echo(f"timestamp: {report['timestamped_at']} (proven by a trusted TSA)")
    approval = report.get("approval")
    if approval:
        typer.echo(f"approved by: {approval['name']}; {approval['reason']}")
    if report.get("document_timestamp"):
        typer.echo(f"document timestamp: {report['document_timestamp']} (PAdES B-LTA)")
    if report.get("level"):
        typer.echo(f"PAdES level: {report['level']}")
    typer.echo(
        f"intact={report['intact']} valid={report['valid']} trusted={report['trusted']} "
        f"whole-file={report['covers_whole_file']}"
    )
    for problem in report["problems"]:
        typer.echo(f"problem: {problem}")
    ok = bool(report["ok"])
    if "batch_in_database" in report:
        if not report["batch_in_database"]:
            typer.echo("database: the signed record names no batch of this site; not compared")
        else:
            matches = report["record_matches_database"]
            typer.echo(
                f"database: batch {report['batch_id']}; embedded record "
                f"{'matches' if matches else 'DIFFERS FROM'} the database"
                f"; published copy: {'yes' if report['published_copy'] else 'no'}"
            )
            for difference in report["record_differences"]:
                typer.echo(f"difference: {difference}")
            if report["audit_entries_after_signing"]:
                typer.echo(
                    f"database: {report['audit_entries_after_signing']} audit entries were "
                    "added after signing (expected: at least the publication itself)"
                )
            typer.echo(f"database: {report['audit_chain_message']}")
            ok = ok and bool(matches) and bool(report["audit_chain_intact"])
    typer.echo("VERIFIED" if ok else "NOT VERIFIED")
    return ok
