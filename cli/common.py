"""What every command needs: the settings, built from the environment on demand."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import ValidationError

from settings.config import Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


def load_settings() -> Settings:
    """The settings, or an exit naming each bad variable (never a traceback at start-up)."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise SystemExit(f"ebr: the configuration is not valid: {problems}") from None


def open_record_store(settings: Settings | None = None) -> Engine:
    """The record store, prepared as the API and worker prepare it: upgraded at start
    outside production, and in production refused until `ebr db upgrade` has run."""
    from store.db import make_engine
    from store.migrate import SchemaNotCurrent, prepare

    settings = settings or load_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        prepare(engine, settings.auto_upgrade_schema)
    except SchemaNotCurrent as exc:
        engine.dispose()
        raise SystemExit(f"ebr: {exc}") from None
    return engine


def _describe(error: object) -> str:
    details = error if isinstance(error, dict) else {}
    message = str(details.get("msg", error)).removeprefix("Value error, ")
    location = details.get("loc") or ()
    if message.startswith("EBR_") or not location:
        return message
    return f"EBR_{str(location[0]).upper()}: {message}"
