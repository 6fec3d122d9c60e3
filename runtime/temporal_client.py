"""The one place a Temporal client is made from settings, for the API, the worker and the
CLI: the embedded dev server, or a cluster with TLS, mTLS client certificates or an API
key, or whatever Temporal's own environment configuration (a TOML profile plus the
TEMPORAL_* variables) says."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.service import TLSConfig

from settings.config import Settings


class TemporalConfigError(Exception):
    """The Temporal connection settings cannot work; the message says which and why."""


class TemporalUnreachable(RuntimeError):
    """No Temporal frontend answered (or it refused the connection) in time."""


@dataclass(frozen=True)
class ConnectOptions:
    target_host: str
    namespace: str
    tls: bool | TLSConfig = False
    api_key: str | None = None
    rpc_metadata: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        security = "plain gRPC"
        if isinstance(self.tls, TLSConfig):
            security = "mTLS" if self.tls.client_cert else "TLS"
        elif self.tls:
            security = "TLS"
        if self.api_key:
            security += " + API key"
        return f"{self.target_host} (namespace {self.namespace}, {security})"


def _read_pem(setting: str, path: Path, kinds: tuple[str, ...]) -> bytes:
    try:
        data = path.expanduser().read_bytes()
    except FileNotFoundError:
        raise TemporalConfigError(f"{setting}={path}: no such file.") from None
    except IsADirectoryError:
        raise TemporalConfigError(f"{setting}={path} is a directory, not a PEM file.") from None
    except PermissionError:
        raise TemporalConfigError(
            f"{setting}={path} cannot be read (permission denied): give the user ebr runs "
            "as read access."
        ) from None
    if not any(f"-----BEGIN {kind}".encode() in data for kind in kinds):
        raise TemporalConfigError(
            f"{setting}={path} is not a PEM file with a {' or '.join(kinds)} "
            f"(expected a line '-----BEGIN {kinds[0]}-----')."
        )
    return data


def _tls_from_settings(settings: Settings) -> bool | TLSConfig | None:
    files = (settings.temporal_tls_ca, settings.temporal_tls_cert,
             settings.temporal_tls_server_name)
    if settings.temporal_tls is False:
        if any(value is not None for value in files):
            raise TemporalConfigError(
                "EBR_TEMPORAL_TLS=false, yet TLS files or a server name are set: remove them "
                "or enable TLS."
            )
        return False
    if all(value is None for value in files):
        # Plain TLS with the system roots when asked for; with an API key the SDK turns
        # TLS on by itself (tls=None).
        return True if settings.temporal_tls else None
    ca = cert = key = None
    if settings.temporal_tls_ca is not None:
        ca = _read_pem("EBR_TEMPORAL_TLS_CA", settings.temporal_tls_ca, ("CERTIFICATE",))
    if settings.temporal_tls_cert is not None and settings.temporal_tls_key is not None:
        cert = _read_pem("EBR_TEMPORAL_TLS_CERT", settings.temporal_tls_cert, ("CERTIFICATE",))
        key = _read_pem("EBR_TEMPORAL_TLS_KEY", settings.temporal_tls_key,
                        ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"))
    return TLSConfig(server_root_ca_cert=ca, client_cert=cert, client_private_key=key,
                     domain=settings.temporal_tls_server_name)


def _from_envconfig(settings: Settings) -> ConnectOptions:
    from temporalio.envconfig import ClientConfig

    try:
        config: dict[str, Any] = dict(ClientConfig.load_client_connect_config(
            profile=settings.temporal_profile))
    except Exception as exc:  # the SDK's loader raises plain errors for bad files/profiles
        raise TemporalConfigError(
            f"Temporal environment configuration (profile {settings.temporal_profile!r}) "
            f"cannot be used: {exc}"
        ) from exc
    if not config.get("target_host"):
        raise TemporalConfigError(
            f"Temporal profile {settings.temporal_profile!r} has no address: set it in "
            "TEMPORAL_CONFIG_FILE or TEMPORAL_ADDRESS."
        )
    return ConnectOptions(
        target_host=config["target_host"],
        namespace=config.get("namespace") or "default",
        tls=config.get("tls", False),
        api_key=config.get("api_key"),
        rpc_metadata=dict(config.get("rpc_metadata") or {}),
    )


def connect_options(settings: Settings) -> ConnectOptions:
    """Check the settings and read the TLS files; raises TemporalConfigError."""
    if settings.temporal_profile is not None:
        return _from_envconfig(settings)
    tls = _tls_from_settings(settings)
    api_key = (settings.temporal_api_key.get_secret_value()
               if settings.temporal_api_key is not None else None)
    if tls is None:
        tls = bool(api_key)
    return ConnectOptions(
        target_host=settings.temporal_target,
        namespace=settings.temporal_namespace,
        tls=tls,
        api_key=api_key,
    )


async def connect(settings: Settings, *, wait_s: float = 0.0, **extra: Any) -> Client:
    """A client per the settings. `wait_s`: keep retrying that long while the frontend is
    not up yet (processes start together). `extra`: interceptors, runtime, …"""
    options = connect_options(settings)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        try:
            return await Client.connect(
                options.target_host,
                namespace=options.namespace,
                tls=options.tls,
                api_key=options.api_key,
                rpc_metadata=options.rpc_metadata,
                **extra,
            )
        except RuntimeError as exc:
            if loop.time() >= deadline:
                raise TemporalUnreachable(
                    f"Cannot connect to Temporal at {options.describe()}: {exc}"
                ) from exc
            await asyncio.sleep(0.5)
