"""All configuration in one place: environment variables prefixed `EBR_`, or a `.env` file.

Defaults give the one-machine stack (embedded Temporal dev server, SQLite under
`var/`, simulated devices). Production points at a Temporal cluster and PostgreSQL.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
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
    db_auto_upgrade: bool | None = Field(
        default=None,
        description="API and worker apply schema migrations at start; default: yes, except "
        "in production, where they refuse an out-of-date schema (run `ebr db upgrade`)",
    )

    temporal_address: str | None = Field(
        default=None,
        description="host:port of a Temporal frontend; unset = start the embedded dev server",
    )
    temporal_namespace: str = "default"
    task_queue: str = "ebr-batches"
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    # A Temporal cluster over TLS (runtime/temporal_client.py reads and checks the files).
    temporal_tls: bool | None = Field(
        default=None, description="TLS to the frontend; default: on when a TLS file, "
        "server name or API key is set"
    )
    temporal_tls_ca: Path | None = Field(
        default=None, description="PEM CA of the frontend's certificate; unset = system roots"
    )
    temporal_tls_cert: Path | None = Field(
        default=None, description="PEM client certificate (mTLS), with temporal_tls_key"
    )
    temporal_tls_key: Path | None = Field(
        default=None, description="PEM private key of the client certificate (mTLS)"
    )
    temporal_tls_server_name: str | None = Field(
        default=None, description="name the frontend's certificate must carry, if not its host"
    )
    temporal_api_key: SecretStr | None = Field(
        default=None, description="API key sent as a bearer token (e.g. Temporal Cloud)"
    )
    temporal_profile: str | None = Field(
        default=None, description="connect as Temporal's environment configuration says: "
        "this profile of TEMPORAL_CONFIG_FILE, with TEMPORAL_* variables on top"
    )
    temporal_dev_persistence: Literal["file", "memory"] = Field(
        default="file", description="embedded dev server state: var/temporal.db, or memory "
        "(everything lost when it stops; tests only)"
    )

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
    # An external WMS/QMS over HTTP (docs/wms-qms.md); unset = ebr's built-in one.
    wms_url: str | None = Field(default=None, description="base URL of an external WMS")
    wms_timeout_s: float = Field(default=5.0, gt=0, description="per WMS call")
    qms_url: str | None = Field(default=None, description="base URL of an external QMS")
    qms_timeout_s: float = Field(default=5.0, gt=0, description="per QMS call")
    # ERP confirmations: `ebr up` runs the outbox relay when this is set.
    erp_url: str | None = Field(default=None, description="URL confirmations are POSTed to")
    erp_timeout_s: float = Field(default=5.0, gt=0, description="per ERP delivery")
    erp_poll_s: float = Field(default=2.0, gt=0, description="relay round interval")
    erp_backoff_max_s: float = Field(default=300.0, gt=0, description="longest retry wait")

    # A trusted timestamp authority (RFC 3161) makes every eBMR signature PAdES B-T.
    # `local`: the development PKI's in-process TSA under var/pki (refused in production).
    tsa_url: str | None = None
    tsa_root: Path | None = Field(default=None, description="PEM root of the TSA's certificate")
    pades_lta: bool = Field(
        default=False, description="with a TSA: embed validation data and a document timestamp"
    )
    # eBMR signing key (docs/reports.md). Unset: the development PKI under var/pki.
    signing_p12: Path | None = Field(default=None, description="PKCS#12 of the signing key")
    signing_root: Path | None = Field(default=None, description="PEM root the signer chains to")
    signing_pkcs11_module: Path | None = Field(default=None, description="PKCS#11 library")
    signing_pkcs11_token: str | None = None
    signing_pkcs11_key_label: str | None = None
    signing_pkcs11_pin: SecretStr | None = None

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
    password_history: int = Field(
        default=5, ge=0, description="a new password may not be any of the last N; 0 = off"
    )

    # Site time zone: stored times stay UTC; people see them in this zone with its offset.
    site_timezone: str = Field(default="UTC", description="IANA name, e.g. Europe/Berlin")

    # Areas (lines, rooms) scope what a user sees. A batch runs in one area; users are
    # granted areas (or "*" = every area). JSON list in the environment:
    # EBR_AREAS='["line-a","line-b"]'.
    areas: list[str] = Field(default=["main"], min_length=1)
    default_area: str = Field(default="main", description="area of a batch started without one")

    @field_validator("site_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"EBR_SITE_TIMEZONE={value!r} is not an IANA time zone name; use e.g. "
                "'Europe/Berlin', 'America/New_York' or 'UTC'."
            ) from exc
        return value

    @field_validator("areas")
    @classmethod
    def _area_names(cls, value: list[str]) -> list[str]:
        for area in value:
            if not area or area == "*" or "," in area or len(area) > 64 or area != area.strip():
                raise ValueError(
                    f"EBR_AREAS: {area!r} is not an area name (1-64 characters, no comma, "
                    "not '*', no surrounding spaces)."
                )
        return value

    @model_validator(mode="after")
    def _default_area_is_known(self) -> Settings:
        if self.default_area not in self.areas:
            raise ValueError(
                f"EBR_DEFAULT_AREA={self.default_area!r} is not one of EBR_AREAS "
                f"({', '.join(self.areas)}): add it there or choose one of them."
            )
        return self

    # Observability (docs/operations.md).
    log_format: Literal["text", "json"] = Field(
        default="text", description="json: one JSON object per line, with request ids"
    )
    log_level: str = "INFO"
    metrics_enabled: bool = Field(default=True, description="serve Prometheus /metrics")
    worker_metrics_address: str | None = Field(
        default=None,
        description="host:port where the worker serves the Temporal SDK's Prometheus metrics",
    )
    otel_enabled: bool = Field(
        default=False, description="trace workflows and activities (pip install 'ebr[otel]')"
    )

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.var_dir / 'ebr.db').as_posix()}"

    @property
    def auto_upgrade_schema(self) -> bool:
        if self.db_auto_upgrade is not None:
            return self.db_auto_upgrade
        return self.env != "production"

    @model_validator(mode="after")
    def _temporal_connection_is_coherent(self) -> Settings:
        if self.temporal_dev_persistence == "memory" and self.env != "test":
            raise ValueError(
                "EBR_TEMPORAL_DEV_PERSISTENCE=memory keeps batches only until the dev server "
                "stops; it is for tests (EBR_ENV=test). Remove it: the dev server keeps its "
                "state in var/temporal.db."
            )
        if (self.temporal_tls_cert is None) != (self.temporal_tls_key is None):
            given, missing = (("EBR_TEMPORAL_TLS_CERT", "EBR_TEMPORAL_TLS_KEY")
                              if self.temporal_tls_cert else
                              ("EBR_TEMPORAL_TLS_KEY", "EBR_TEMPORAL_TLS_CERT"))
            raise ValueError(f"{given} is set but {missing} is not: an mTLS client "
                             "certificate needs both its certificate and its private key.")
        cluster_options = [name for name, value in (
            ("EBR_TEMPORAL_TLS", self.temporal_tls),
            ("EBR_TEMPORAL_TLS_CA", self.temporal_tls_ca),
            ("EBR_TEMPORAL_TLS_CERT", self.temporal_tls_cert),
            ("EBR_TEMPORAL_TLS_SERVER_NAME", self.temporal_tls_server_name),
            ("EBR_TEMPORAL_API_KEY", self.temporal_api_key),
        ) if value is not None]
        if self.temporal_profile is not None:
            conflicts = [*cluster_options]
            if self.temporal_address is not None:
                conflicts.append("EBR_TEMPORAL_ADDRESS")
            if "temporal_namespace" in self.model_fields_set:
                conflicts.append("EBR_TEMPORAL_NAMESPACE")
            if conflicts:
                raise ValueError(
                    "EBR_TEMPORAL_PROFILE takes the address, namespace, TLS and API key from "
                    "Temporal's environment configuration; do not also set "
                    f"{', '.join(conflicts)}."
                )
        if self.temporal_address is None and self.temporal_profile is None and any(
            name != "EBR_TEMPORAL_TLS" or self.temporal_tls for name in cluster_options
        ):
            raise ValueError(
                f"{', '.join(cluster_options)} configure the connection to a Temporal cluster, "
                "but EBR_TEMPORAL_ADDRESS is not set (the embedded dev server speaks plain "
                "gRPC on loopback). Set EBR_TEMPORAL_ADDRESS=host:port of the frontend."
            )
        return self

    @property
    def embedded_temporal(self) -> bool:
        return self.temporal_address is None and self.temporal_profile is None

    @property
    def temporal_target(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"

    @property
    def reports_dir(self) -> Path:
        return self.var_dir / "reports"

    def report_file(self, stored: str) -> Path:
        """Where a published eBMR is now. The record store keeps the path it was written
        to; after a restore into another data directory the same file is found by name
        under this site's reports directory."""
        here = self.reports_dir / Path(stored).name
        return here if here.exists() else Path(stored)

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
