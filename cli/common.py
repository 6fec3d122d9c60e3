"""What every command needs: the settings, built from the environment on demand."""

from __future__ import annotations

from settings.config import Settings


def load_settings() -> Settings:
    return Settings()
