"""All configuration in one place: environment variables prefixed `EBR_`, or a `.env` file.

Defaults give the one-machine stack (embedded Temporal dev server, SQLite under
`var/`, simulated devices). Production points at a Temporal cluster and PostgreSQL.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from settings.secrets import Secrets, load_or_create_secrets


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="EBR_", env_file=".env", extra="ignore", frozen=True
    )

    env: Literal["development", "test", "production"] = "development"
    var_dir: Path = Path("var")

    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file var/ebr.db"
    )

    temporal_address: str | None = Field(
        default=None,
        description="host:port of a Temporal frontend; unset = start the embedded dev server",
    )
    temporal_namespace: str = "default"
    task_queue: str = "ebr-batches"
    temporal_port: int = 7233
    temporal_ui_port: int = 8233

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    site_name: str = "ebr demo site"

    # Devices. Unset = `ebr up` starts the simulators and passes their addresses on.
    scale_url: str | None = Field(
        default=None, description="serial device path or pyserial URL of SCALE-01"
    )
    plc_host: str | None = None
    plc_port: int = 502
    simulator_time_scale: float = 20.0

    token_ttl_s: int = 900

    # Batches consume material from WMS lots and raise QMS deviations (the built-ins by
    # default; off only for recipes whose materials the WMS does not manage).
    use_wms: bool = True
    use_qms: bool = True

    # A trusted timestamp authority (RFC 3161) makes every eBMR signature PAdES B-T.
    tsa_url: str | None = None
    tsa_root: Path | None = Field(default=None, description="PEM root of the TSA's certificate")

    # Part 11 identity controls (issue 5).
    lockout_threshold: int = Field(
        default=5, ge=1, description="failed logins or signing attempts before a lockout"
    )
    lockout_duration_s: int = Field(default=900, ge=1, description="how long a lockout lasts")
    password_max_age_days: int = Field(
        default=90, ge=0, description="a password older than this must be changed; 0 = never"
    )
    idle_timeout_s: int = Field(
        default=600, ge=1, description="a session unused for this long is closed"
    )

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.var_dir / 'ebr.db').as_posix()}"

    @property
    def embedded_temporal(self) -> bool:
        return self.temporal_address is None

    @property
    def temporal_target(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"

    @property
    def reports_dir(self) -> Path:
        return self.var_dir / "reports"

    @property
    def pki_dir(self) -> Path:
        return self.var_dir / "pki"

    @property
    def devices_state_file(self) -> Path:
        return self.var_dir / "run" / "devices.json"

    @cached_property
    def secrets(self) -> Secrets:
        production = self.env == "production"
        return load_or_create_secrets(self.var_dir / "secrets.json", production=production)


def get_settings() -> Settings:
    return Settings()
