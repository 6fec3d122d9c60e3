"""`ebr audit …`: the audit trail's hash chain."""

from __future__ import annotations

import typer

from cli.common import load_settings

audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)


@audit_app.command("verify")
def audit_verify() -> None:
    """Check every audit entry's hash and link; name the first entry that does not verify.

    Exit status 0 = intact, 1 = broken, 2 = the record store could not be read.
    """
    from sqlalchemy.exc import SQLAlchemyError
    from sqlmodel import Session

    from store.audit import verify_chain
    from store.db import make_engine

    settings = load_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        with Session(engine) as session:
            check = verify_chain(session)
    except SQLAlchemyError as exc:
        typer.echo(f"ebr audit verify: cannot read the record store ({exc.__class__.__name__}: "
                   f"{exc.orig if hasattr(exc, 'orig') else exc}).", err=True)
        raise typer.Exit(2) from exc
    finally:
        engine.dispose()
    typer.echo(check.describe())
    raise typer.Exit(0 if check.ok else 1)
