"""`ebr db …`: the record store's schema revisions (Alembic, store/migrations)."""

from __future__ import annotations

import typer

from cli.common import load_settings

db_app = typer.Typer(help="Database schema: upgrade, current revision.", no_args_is_help=True)


def _where(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _fail(what: str, url: str, exc: Exception) -> typer.Exit:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    typer.echo(f"ebr db {what}: cannot use the database at {_where(url)}: {first}", err=True)
    return typer.Exit(2)


@db_app.command("upgrade")
def upgrade(to: str = typer.Option("head", "--to", help="Target revision.")) -> None:
    """Apply the schema migrations the database lacks (EBR_DATABASE_URL).

    Safe to repeat and to run while other ebr processes start: they migrate one after
    the other. `ebr up` runs this itself.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from store.db import make_engine
    from store.migrate import current_revision
    from store.migrate import upgrade as run_upgrade

    url = load_settings().resolved_database_url
    engine = make_engine(url)
    try:
        before = current_revision(engine)
        run_upgrade(engine, to)
        after = current_revision(engine)
    except SQLAlchemyError as exc:
        raise _fail("upgrade", url, exc) from exc
    finally:
        engine.dispose()
    if before == after:
        typer.echo(f"{_where(url)}: already at {after}")
    else:
        typer.echo(f"{_where(url)}: upgraded from {before or 'empty'} to {after}")


@db_app.command("current")
def current() -> None:
    """Print the database's schema revision; exit 1 if it is not this version's newest."""
    from sqlalchemy.exc import SQLAlchemyError

    from store.db import make_engine
    from store.migrate import current_revision, head_revision

    url = load_settings().resolved_database_url
    engine = make_engine(url)
    try:
        revision = current_revision(engine)
    except SQLAlchemyError as exc:
        raise _fail("current", url, exc) from exc
    finally:
        engine.dispose()
    head = head_revision()
    if revision == head:
        typer.echo(f"{revision} (head)")
        return
    typer.echo(f"{revision or 'none (empty database)'}; this ebr needs {head}: "
               "run `ebr db upgrade`")
    raise typer.Exit(1)


@db_app.command("revision")
def revision(message: str = typer.Option(..., "-m", "--message",
                                         help="What the revision changes.")) -> None:
    """Developers: write a revision for what the models changed since the newest one.

    Compares the models with the newest revision on a scratch SQLite database and writes
    store/migrations/versions/<date>_<rev>_<message>.py. Read it before committing.
    """
    from store.migrate import autogenerate_revision

    typer.echo(str(autogenerate_revision(message)))
