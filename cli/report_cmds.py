"""`ebr report …`: signed eBMR documents."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import load_settings

report_app = typer.Typer(help="Signed eBMR documents.", no_args_is_help=True)


@report_app.command("verify")
def report_verify(
    pdf: Annotated[Path, typer.Argument(help="the signed eBMR PDF")],
    trust: Annotated[Path | None, typer.Option(help="root certificate (PEM) to trust")] = None,
) -> None:
    """Verify an eBMR offline: signature intact, valid, trusted, and covering the whole file."""
    from reports.verify import VerificationError, verify_pdf

    root = trust or load_settings().pki_dir / "root.pem"
    try:
        result = verify_pdf(pdf.read_bytes(), root)
    except (OSError, VerificationError) as exc:
        typer.echo(f"ebr report verify: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"signer: {result.signer}; signed at: {result.signed_at}")
    typer.echo(f"intact={result.intact} valid={result.valid} trusted={result.trusted} "
               f"whole-file={result.covers_whole_file}")
    for problem in result.problems:
        typer.echo(f"problem: {problem}")
    typer.echo("VERIFIED" if result.ok else "NOT VERIFIED")
    raise typer.Exit(0 if result.ok else 1)
