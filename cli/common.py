"""What every command needs: the settings, built from the environment on demand."""

from __future__ import annotations

from pydantic import ValidationError

from settings.config import Settings


def load_settings() -> Settings:
    """The settings, or an exit naming each bad variable (never a traceback at start-up)."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise SystemExit(f"ebr: the configuration is not valid: {problems}") from None


def _describe(error: object) -> str:
    details = error if isinstance(error, dict) else {}
    message = str(details.get("msg", error)).removeprefix("Value error, ")
    location = details.get("loc") or ()
    if message.startswith("EBR_") or not location:
        return message
    return f"EBR_{str(location[0]).upper()}: {message}"
