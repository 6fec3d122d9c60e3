"""Demo PKI: created once, reused afterwards, key material kept private."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from reports.errors import SigningIdentityError
from reports.pki import SigningIdentity, ensure_signing_identity, load_root, load_signer_material

PASSPHRASE = b"correct horse battery staple"


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("site") / "pki"
    ensure_signing_identity(directory, PASSPHRASE)
    return directory


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_creates_root_and_signer_with_private_permissions(pki_dir: Path) -> None:
    identity = ensure_signing_identity(pki_dir, PASSPHRASE)
    assert identity.root_cert == pki_dir / "root.pem"
    assert identity.signer_p12 == pki_dir / "signer.p12"
    assert _mode(identity.root_cert) == 0o600
    assert _mode(identity.signer_p12) == 0o600


def test_is_idempotent(pki_dir: Path) -> None:
    root_before = (pki_dir / "root.pem").read_bytes()
    signer_before = (pki_dir / "signer.p12").read_bytes()

    again = ensure_signing_identity(pki_dir, PASSPHRASE)

    assert again.root_cert.read_bytes() == root_before
    assert again.signer_p12.read_bytes() == signer_before
    assert _mode(again.root_cert) == 0o600
    assert _mode(again.signer_p12) == 0o600


def test_signer_certificate_is_fit_for_document_signing(pki_dir: Path) -> None:
    identity = ensure_signing_identity(pki_dir, PASSPHRASE)
    material = load_signer_material(identity)
    root = load_root(identity.root_cert)

    material.cert.verify_directly_issued_by(root)
    usage = material.cert.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE).value
    assert usage.digital_signature and usage.content_commitment
    assert not usage.key_cert_sign
    constraints = material.cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.value.ca is False
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True


def test_loosened_permissions_are_reset(pki_dir: Path) -> None:
    os.chmod(pki_dir / "signer.p12", 0o644)
    ensure_signing_identity(pki_dir, PASSPHRASE)
    assert _mode(pki_dir / "signer.p12") == 0o600


def test_wrong_passphrase_is_reported(pki_dir: Path) -> None:
    with pytest.raises(SigningIdentityError, match="wrong passphrase"):
        ensure_signing_identity(pki_dir, b"not the passphrase")


def test_half_an_identity_is_not_silently_replaced(tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    directory.mkdir()
    (directory / "root.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    with pytest.raises(SigningIdentityError, match=r"signer\.p12"):
        ensure_signing_identity(directory, PASSPHRASE)


def test_empty_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SigningIdentityError, match="empty"):
        ensure_signing_identity(tmp_path / "pki", b"")


def test_repr_does_not_leak_the_passphrase() -> None:
    identity = SigningIdentity(Path("root.pem"), Path("signer.p12"), b"s3cret-value")
    assert "s3cret-value" not in repr(identity)
