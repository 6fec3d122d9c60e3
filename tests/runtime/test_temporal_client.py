"""Connecting to a Temporal cluster: TLS and mTLS for real through a TLS-terminating proxy
on loopback in front of the dev server (test CA made with `cryptography`), Temporal's
environment configuration, and clear refusals of settings that cannot work."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import os
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import ValidationError
from temporalio.service import TLSConfig
from temporalio.testing import WorkflowEnvironment

from runtime.temporal_client import (
    TemporalConfigError,
    TemporalUnreachable,
    connect,
    connect_options,
)
from settings.config import Settings

SERVER_NAME = "temporal.test"


# --- a test PKI ------------------------------------------------------------------------


@dataclass
class Issued:
    cert: Path
    key: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write(directory: Path, stem: str, cert: x509.Certificate,
           key: ec.EllipticCurvePrivateKey) -> Issued:
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return Issued(cert_path, key_path)


class PlantCA:
    def __init__(self, directory: Path, name: str) -> None:
        self.dir = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name))
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.issued = _write(directory, name, self.cert, self.key)

    def issue(self, stem: str, *, server: bool) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder().subject_name(_name(stem)).issuer_name(self.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName([
                x509.DNSName(SERVER_NAME), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
            ]), critical=False).add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        else:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        return _write(self.dir, stem, builder.sign(self.key, hashes.SHA256()), key)


@dataclass
class Pki:
    ca: PlantCA
    server: Issued
    client: Issued
    rogue_client: Issued  # signed by a CA the server does not trust


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca, rogue = PlantCA(tmp_path, "plant-ca"), PlantCA(tmp_path, "rogue-ca")
    return Pki(ca, ca.issue("frontend", server=True), ca.issue("ebr-worker", server=False),
               rogue.issue("intruder", server=False))


# --- a TLS-terminating proxy in front of the dev server (which speaks plain gRPC) ------


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def tls_proxy(upstream: str, pki: Pki, require_client_cert: bool) -> AsyncIterator[str]:
    host, port = upstream.rsplit(":", 1)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server.cert, pki.server.key)
    context.set_alpn_protocols(["h2"])
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(pki.ca.issued.cert)
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        both = asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        tasks.add(both)  # type: ignore[arg-type]
        await both

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    address = server.sockets[0].getsockname()
    try:
        yield f"127.0.0.1:{address[1]}"
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.wait_for(server.wait_closed(), 10)


def cluster_settings(address: str, **kw: object) -> Settings:
    return Settings(_env_file=None, env="test", temporal_address=address, **kw)  # type: ignore[arg-type]


def target_of(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


# --- TLS for real ----------------------------------------------------------------------


async def test_mtls_with_the_plant_ca_reaches_the_cluster(temporal_env, pki):
    async with tls_proxy(target_of(temporal_env), pki, require_client_cert=True) as address:
        settings = cluster_settings(
            address, temporal_tls_ca=pki.ca.issued.cert, temporal_tls_cert=pki.client.cert,
            temporal_tls_key=pki.client.key, temporal_tls_server_name=SERVER_NAME)
        assert connect_options(settings).describe().endswith("(namespace default, mTLS)")
        client = await connect(settings)
        assert await client.service_client.check_health()
        # A real namespace call through the tunnel, not only the health service.
        assert [w async for w in client.list_workflows("WorkflowType = 'none'")] == []


async def test_server_certificate_checked_against_the_plant_ca_over_tls(temporal_env, pki):
    async with tls_proxy(target_of(temporal_env), pki, require_client_cert=False) as address:
        settings = cluster_settings(address, temporal_tls_ca=pki.ca.issued.cert,
                                    temporal_tls_server_name=SERVER_NAME)
        client = await connect(settings)
        assert await client.service_client.check_health()


async def test_cluster_requiring_client_certificates_refuses_a_client_without_one(
    temporal_env, pki
):
    async with tls_proxy(target_of(temporal_env), pki, require_client_cert=True) as address:
        settings = cluster_settings(address, temporal_tls_ca=pki.ca.issued.cert,
                                    temporal_tls_server_name=SERVER_NAME)
        with pytest.raises(TemporalUnreachable, match=f"Cannot connect to Temporal at {address}"):
            client = await connect(settings)
            await client.service_client.check_health()


async def test_client_certificate_from_another_ca_is_refused(temporal_env, pki):
    async with tls_proxy(target_of(temporal_env), pki, require_client_cert=True) as address:
        settings = cluster_settings(
            address, temporal_tls_ca=pki.ca.issued.cert,
            temporal_tls_cert=pki.rogue_client.cert, temporal_tls_key=pki.rogue_client.key,
            temporal_tls_server_name=SERVER_NAME)
        with pytest.raises(TemporalUnreachable):
            client = await connect(settings)
            await client.service_client.check_health()


async def test_frontend_not_signed_by_the_configured_ca_is_refused(temporal_env, pki, tmp_path):
    other = PlantCA(tmp_path, "other-ca")
    async with tls_proxy(target_of(temporal_env), pki, require_client_cert=False) as address:
        settings = cluster_settings(address, temporal_tls_ca=other.issued.cert,
                                    temporal_tls_server_name=SERVER_NAME)
        with pytest.raises(TemporalUnreachable):
            client = await connect(settings)
            await client.service_client.check_health()


async def test_temporal_environment_configuration_profile_connects_with_mtls(
    temporal_env, pki, tmp_path, monkeypatch
):
    async with tls_proxy(target_of(temporal_env), pki, require_client_cert=True) as address:
        config = tmp_path / "temporal.toml"
        config.write_text(
            f'[profile.plant]\naddress = "{address}"\nnamespace = "default"\n'
            f'[profile.plant.tls]\nserver_name = "{SERVER_NAME}"\n'
            f'server_ca_cert_path = "{pki.ca.issued.cert}"\n'
            f'client_cert_path = "{pki.client.cert}"\nclient_key_path = "{pki.client.key}"\n')
        for key in [k for k in os.environ if k.startswith("TEMPORAL_")]:
            monkeypatch.delenv(key)
        monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(config))
        settings = Settings(_env_file=None, env="test", temporal_profile="plant")
        assert not settings.embedded_temporal
        options = connect_options(settings)
        assert options.target_host == address and isinstance(options.tls, TLSConfig)
        client = await connect(settings)
        assert await client.service_client.check_health()


async def test_unreachable_frontend_is_named_after_the_wait(unused_port_address):
    settings = cluster_settings(unused_port_address)
    with pytest.raises(TemporalUnreachable, match=unused_port_address):
        await connect(settings, wait_s=1.0)


@pytest.fixture
def unused_port_address() -> str:
    from tests.stack_rig import free_port

    return f"127.0.0.1:{free_port()}"


# --- settings that cannot work are refused, saying why ---------------------------------


def test_client_certificate_without_its_key_is_refused(pki):
    with pytest.raises(ValidationError, match="EBR_TEMPORAL_TLS_CERT is set but "
                                              "EBR_TEMPORAL_TLS_KEY is not"):
        cluster_settings("t:7233", temporal_tls_cert=pki.client.cert)
    with pytest.raises(ValidationError, match="EBR_TEMPORAL_TLS_KEY is set but "
                                              "EBR_TEMPORAL_TLS_CERT is not"):
        cluster_settings("t:7233", temporal_tls_key=pki.client.key)


def test_missing_tls_file_is_named(pki, tmp_path):
    settings = cluster_settings("t:7233", temporal_tls_ca=tmp_path / "nope.pem")
    with pytest.raises(TemporalConfigError, match=r"EBR_TEMPORAL_TLS_CA=.*nope.pem: no such"):
        connect_options(settings)


def test_tls_file_that_is_a_directory_or_not_pem_is_named(pki, tmp_path):
    with pytest.raises(TemporalConfigError, match="is a directory"):
        connect_options(cluster_settings("t:7233", temporal_tls_ca=tmp_path))
    with pytest.raises(TemporalConfigError, match=r"EBR_TEMPORAL_TLS_KEY=.* is not a PEM file"):
        connect_options(cluster_settings("t:7233", temporal_tls_cert=pki.client.cert,
                                         temporal_tls_key=pki.client.cert))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_key_is_named(pki):
    pki.client.key.chmod(0)
    settings = cluster_settings("t:7233", temporal_tls_cert=pki.client.cert,
                                temporal_tls_key=pki.client.key)
    with pytest.raises(TemporalConfigError, match="permission denied"):
        connect_options(settings)


def test_tls_settings_without_a_cluster_address_are_refused(pki):
    with pytest.raises(ValidationError, match="EBR_TEMPORAL_ADDRESS is not set"):
        Settings(_env_file=None, env="test", temporal_tls_ca=pki.ca.issued.cert)


def test_tls_disabled_with_tls_files_is_refused(pki):
    settings = cluster_settings("t:7233", temporal_tls=False, temporal_tls_ca=pki.ca.issued.cert)
    with pytest.raises(TemporalConfigError, match="EBR_TEMPORAL_TLS=false"):
        connect_options(settings)


def test_profile_and_explicit_connection_settings_are_not_mixed():
    with pytest.raises(ValidationError, match="do not also set EBR_TEMPORAL_ADDRESS"):
        Settings(_env_file=None, temporal_profile="plant", temporal_address="t:7233")
    with pytest.raises(ValidationError, match="EBR_TEMPORAL_NAMESPACE"):
        Settings(_env_file=None, temporal_profile="plant", temporal_namespace="x")


def test_api_key_turns_tls_on_and_plain_address_stays_plain():
    keyed = connect_options(cluster_settings("t:7233", temporal_api_key="k-123"))
    assert keyed.tls is True and keyed.api_key == "k-123"
    assert keyed.describe() == "t:7233 (namespace default, TLS + API key)"
    plain = connect_options(cluster_settings("t:7233"))
    assert plain.tls is False and plain.describe() == "t:7233 (namespace default, plain gRPC)"


def test_in_memory_dev_server_is_refused_outside_tests():
    with pytest.raises(ValidationError, match="for tests"):
        Settings(_env_file=None, env="development", temporal_dev_persistence="memory")
    with pytest.raises(ValidationError, match="for tests"):
        Settings(_env_file=None, env="production", temporal_dev_persistence="memory")
    assert Settings(_env_file=None, env="test",
                    temporal_dev_persistence="memory").temporal_dev_persistence == "memory"


# --- ebr temporal check ----------------------------------------------------------------


def test_temporal_check_names_the_server_and_namespace(temporal_env, monkeypatch):
    from typer.testing import CliRunner

    from cli.main import app

    monkeypatch.setenv("EBR_TEMPORAL_ADDRESS", target_of(temporal_env))
    result = CliRunner().invoke(app, ["temporal", "check"])
    assert result.exit_code == 0, result.output
    assert f"at {target_of(temporal_env)} (namespace default, plain gRPC)" in result.output
    assert "namespace default answers" in result.output


def test_temporal_check_of_a_missing_ca_file_fails_with_the_reason(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from cli.main import app

    monkeypatch.setenv("EBR_TEMPORAL_ADDRESS", "127.0.0.1:1")
    monkeypatch.setenv("EBR_TEMPORAL_TLS_CA", str(tmp_path / "ca.pem"))
    result = CliRunner().invoke(app, ["temporal", "check"])
    assert result.exit_code == 1 and "no such file" in result.output
    assert "Traceback" not in result.output
