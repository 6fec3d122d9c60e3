"""PAdES B-T: a signature timestamp from an RFC 3161 authority, here one on loopback."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko_certvalidator.registry import SimpleCertificateStore

from reports.errors import SigningError
from reports.pki import SigningIdentity
from reports.render import RenderedPdf
from reports.sign import sign_pdf
from reports.verify import verify_pdf
from tests.loopback import QuietHandler, serving


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


class LoopbackTsa:
    """An RFC 3161 timestamp authority over HTTP on 127.0.0.1, with its own root CA."""

    def __init__(self, directory: Path) -> None:
        now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        root = (
            x509.CertificateBuilder()
            .subject_name(_name("test TSA root"))
            .issuer_name(_name("test TSA root"))
            .public_key(root_key.public_key())
            .serial_number(1)
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(root_key, hashes.SHA256())
        )
        tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        tsa = (
            x509.CertificateBuilder()
            .subject_name(_name("test TSA"))
            .issuer_name(root.subject)
            .public_key(tsa_key.public_key())
            .serial_number(2)
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            # RFC 3161 requires this EKU, and critical, on a timestamping certificate.
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
            )
            .sign(root_key, hashes.SHA256())
        )
        self.root_pem = directory / "tsa-root.pem"
        self.root_pem.write_bytes(root.public_bytes(serialization.Encoding.PEM))
        key_info = asn1_keys.PrivateKeyInfo.load(
            tsa_key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self.stamper = DummyTimeStamper(
            tsa_cert=_asn1(tsa),
            tsa_key=key_info,
            certs_to_embed=SimpleCertificateStore.from_certs([_asn1(root)]),
        )
        self.requests = 0

    def respond(self, body: bytes) -> bytes:
        self.requests += 1
        request = tsp.TimeStampReq.load(body)
        return asyncio.run(self.stamper.async_request_tsa_response(request)).dump()


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LoopbackTsa, str]]:
    authority = LoopbackTsa(tmp_path_factory.mktemp("tsa"))

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            reply = authority.respond(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

    with serving(Handler) as base_url:
        yield authority, f"{base_url}/tsa"


def test_timestamped_signature_verifies_with_a_proven_time(
    rendered: RenderedPdf, identity: SigningIdentity, tsa: tuple[LoopbackTsa, str]
) -> None:
    authority, url = tsa
    before = authority.requests
    signed = sign_pdf(
        rendered.pdf, identity, timestamp_url=url, timestamp_roots=[authority.root_pem]
    )
    # pyHanko also asks once up front, to learn and validate the TSA certificate chain.
    assert authority.requests > before

    result = verify_pdf(signed, identity.root_cert, tsa_roots=[authority.root_pem])

    assert result.ok, result.problems
    assert result.timestamped_at is not None
    proven = dt.datetime.fromisoformat(result.timestamped_at)
    assert abs(dt.datetime.now(dt.UTC) - proven) < dt.timedelta(minutes=5)


def test_timestamp_from_an_untrusted_authority_is_a_problem(
    rendered: RenderedPdf, identity: SigningIdentity, tsa: tuple[LoopbackTsa, str]
) -> None:
    authority, url = tsa
    signed = sign_pdf(
        rendered.pdf, identity, timestamp_url=url, timestamp_roots=[authority.root_pem]
    )
    result = verify_pdf(signed, identity.root_cert)  # the TSA's root is not given
    assert not result.ok
    assert result.timestamped_at is None
    assert any("timestamp" in problem for problem in result.problems)


def test_unreachable_authority_fails_signing_instead_of_skipping_the_timestamp(
    rendered: RenderedPdf, identity: SigningIdentity
) -> None:
    with pytest.raises(SigningError, match="timestamp authority"):
        sign_pdf(rendered.pdf, identity, timestamp_url="http://127.0.0.1:9/tsa")


def test_without_a_tsa_there_is_no_timestamp(
    rendered: RenderedPdf, identity: SigningIdentity
) -> None:
    result = verify_pdf(sign_pdf(rendered.pdf, identity), identity.root_cert)
    assert result.ok
    assert result.timestamped_at is None
