"""Demo/development PKI: a self-signed root and one document-signing certificate.

Production sites point `SigningIdentity` at their own PKCS#12 and root certificate; nothing
downstream (signing, verification) depends on how this module created the files.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import logging
import os
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from reports.errors import SigningIdentityError
from reports.publish import _write_atomically

log = logging.getLogger(__name__)

ROOT_FILE = "root.pem"
SIGNER_FILE = "signer.p12"
TSA_ROOT_FILE = "tsa-root.pem"
TSA_FILE = "tsa.p12"
_LOCK_FILE = ".pki.lock"
_SECRET_MODE = 0o600

# RFC 9336 id-kp-documentSigning; older cryptography releases have no constant for it.
_DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")
# Without a timestamp authority a signature is judged at verification time, so the demo
# certificates must stay valid for as long as anyone may want to check a demo record.
_ROOT_VALIDITY = dt.timedelta(days=20 * 365)
_SIGNER_VALIDITY = dt.timedelta(days=10 * 365)
# Tolerate a verifier whose clock is slightly behind the machine that created the PKI.
_BACKDATE = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class SigningIdentity:
    """Where the signing key lives and which root a verifier must trust."""

    root_cert: Path
    signer_p12: Path
    # Excluded from repr so that logging an identity never prints the passphrase.
    passphrase: bytes = field(repr=False)


@dataclass(frozen=True)
class Pkcs11Identity:
    """A signing key that never leaves a PKCS#11 token (HSM, smart card, SoftHSM).

    `module` is the token's PKCS#11 library (e.g. /usr/lib/softhsm/libsofthsm2.so),
    `token_label` selects the token, `key_label` the key and its certificate (same label,
    or `cert_label`). `root_cert` is the site root the certificate chains to.
    """

    module: Path
    token_label: str
    key_label: str
    root_cert: Path
    pin: str = field(repr=False)
    cert_label: str | None = None


@dataclass(frozen=True)
class LocalTsa:
    """The development PKI's timestamp authority: its certificate and key, and its root.

    Used in-process (no network): it proves nothing beyond this machine's clock, so it
    is for development and demonstrations; production points at a real TSA by URL.
    """

    root_cert: Path
    tsa_p12: Path
    passphrase: bytes = field(repr=False)


@dataclass(frozen=True)
class SignerMaterial:
    """The unlocked contents of a PKCS#12: private key, its certificate and the chain."""

    key: pkcs12.PKCS12PrivateKeyTypes
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...]


def ensure_signing_identity(
    pki_dir: Path, passphrase: bytes, organisation: str = "ebr demo site"
) -> SigningIdentity:
    """Return the site's signing identity, creating the demo PKI on first use.

    Idempotent and safe against concurrent first calls from several worker processes:
    two roots racing each other would leave a signer that the published root cannot verify.
    """
    if not passphrase:
        raise SigningIdentityError(
            "the signing passphrase is empty; configure a non-empty passphrase for signer.p12"
        )
    pki_dir = Path(pki_dir)
    try:
        pki_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise SigningIdentityError(
            f"cannot create the PKI directory {pki_dir}: {exc.strerror or exc}"
        ) from exc

    identity = SigningIdentity(
        root_cert=pki_dir / ROOT_FILE, signer_p12=pki_dir / SIGNER_FILE, passphrase=passphrase
    )
    with _locked(pki_dir / _LOCK_FILE):
        root_exists = identity.root_cert.exists()
        signer_exists = identity.signer_p12.exists()
        if root_exists and signer_exists:
            _tighten_permissions(identity.root_cert, identity.signer_p12)
            _check_existing(identity)
            return identity
        if root_exists or signer_exists:
            present, missing = (ROOT_FILE, SIGNER_FILE) if root_exists else (SIGNER_FILE, ROOT_FILE)
            raise SigningIdentityError(
                f"{pki_dir} holds {present} but not {missing}; restore {missing} from backup, "
                f"or move {pki_dir} aside to create a new identity (PDFs signed with the old "
                "one then verify only against the old root.pem)"
            )
        _generate(identity, organisation)
        log.info("created demo signing identity in %s", pki_dir)
    return identity


def ensure_local_tsa(
    pki_dir: Path, passphrase: bytes, organisation: str = "ebr demo site"
) -> LocalTsa:
    """Return the development TSA under `pki_dir`, creating it on first use.

    A root of its own (tsa-root.pem; its key is discarded once it has issued the TSA
    certificate) and tsa.p12 holding the timestamping key. Safe against concurrent first
    calls, like the signing identity.
    """
    if not passphrase:
        raise SigningIdentityError("the TSA passphrase is empty; configure a non-empty one")
    pki_dir = Path(pki_dir)
    pki_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    tsa = LocalTsa(pki_dir / TSA_ROOT_FILE, pki_dir / TSA_FILE, passphrase)
    with _locked(pki_dir / _LOCK_FILE):
        have_root, have_key = tsa.root_cert.exists(), tsa.tsa_p12.exists()
        if have_root and have_key:
            return tsa
        if have_root or have_key:
            raise SigningIdentityError(
                f"{pki_dir} holds only one of {TSA_ROOT_FILE} and {TSA_FILE}; restore the "
                "other from backup or remove both to create a new development TSA"
            )
        _generate_tsa(tsa, organisation)
        log.info("created development timestamp authority in %s", pki_dir)
    return tsa


def load_tsa_material(tsa: LocalTsa) -> SignerMaterial:
    """The TSA's key and certificate (cached like the signer's)."""
    return load_signer_material(
        SigningIdentity(root_cert=tsa.root_cert, signer_p12=tsa.tsa_p12, passphrase=tsa.passphrase)
    )


def _generate_tsa(tsa: LocalTsa, organisation: str) -> None:
    _issue_from_new_root(
        root_common_name=f"{organisation} development TSA root",
        leaf_common_name=f"{organisation} development timestamp authority",
        organisation=organisation,
        # RFC 3161 2.3: exactly this extended key usage, marked critical.
        leaf_extensions=[
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), True),
        ],
        friendly_name=b"ebr development TSA",
        p12_path=tsa.tsa_p12,
        root_path=tsa.root_cert,
        passphrase=tsa.passphrase,
    )


def load_signer_material(identity: SigningIdentity) -> SignerMaterial:
    """Unlock the PKCS#12 of `identity` (any PKCS#12 with a key and certificate will do).

    Cached per file version: OpenSSL validates an RSA-3072 key on every load (~150 ms),
    which would otherwise dominate the cost of signing a batch record.
    """
    path = Path(identity.signer_p12)
    try:
        info = path.stat()
    except OSError as exc:
        raise SigningIdentityError(
            f"cannot read the signing key {path}: {exc.strerror or exc}"
        ) from exc
    # The file's identity and version are part of the key, so a replaced or renewed
    # PKCS#12 is picked up without a restart.
    return _load_material(
        str(path.resolve()), info.st_ino, info.st_mtime_ns, info.st_size, identity.passphrase
    )


@functools.lru_cache(maxsize=8)
def _load_material(
    path: str, _inode: int, _mtime_ns: int, _size: int, passphrase: bytes
) -> SignerMaterial:
    data = _read(path, "the signing key")
    try:
        key, cert, chain = pkcs12.load_key_and_certificates(data, passphrase)
    except ValueError as exc:
        raise SigningIdentityError(
            f"cannot open {path}: wrong passphrase or not a PKCS#12 file; "
            "use the passphrase the file was created with"
        ) from exc
    if key is None or cert is None:
        raise SigningIdentityError(f"{path} must contain both a private key and its certificate")
    return SignerMaterial(key=key, cert=cert, chain=tuple(chain))


def load_root(path: Path) -> x509.Certificate:
    """Read a PEM (or DER) trust root, with an error that names the file."""
    data = _read(path, "the root certificate")
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise SigningIdentityError(
            f"{path} is not an X.509 certificate in PEM or DER form"
        ) from exc


def _read(path: Path | str, what: str) -> bytes:
    """A key or certificate file's bytes; an unreadable one is named, with the reason."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise SigningIdentityError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, _SECRET_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _tighten_permissions(*paths: Path) -> None:
    for path in paths:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode != _SECRET_MODE:
            # Someone loosened them (copy, restore from backup): say so, then repair.
            log.warning("%s had mode %o; resetting it to %o", path, mode, _SECRET_MODE)
            os.chmod(path, _SECRET_MODE)


def _check_existing(identity: SigningIdentity) -> None:
    material = load_signer_material(identity)
    root = load_root(identity.root_cert)
    try:
        material.cert.verify_directly_issued_by(root)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise SigningIdentityError(
            f"the certificate in {identity.signer_p12} was not issued by {identity.root_cert}; "
            "the two files come from different identities: restore the matching pair"
        ) from exc


def _name(common_name: str, organisation: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        ]
    )


def _generate(identity: SigningIdentity, organisation: str) -> None:
    # content_commitment is nonRepudiation under its newer name.
    signing_usage = _key_usage("digital_signature", "content_commitment")
    # documentSigning states the purpose; emailProtection is what older PDF viewers
    # (Acrobat) accept for document signatures when an EKU extension is present.
    document_eku = x509.ExtendedKeyUsage([_DOCUMENT_SIGNING, ExtendedKeyUsageOID.EMAIL_PROTECTION])
    _issue_from_new_root(
        root_common_name=f"{organisation} demo root CA",
        leaf_common_name=f"{organisation} batch record signing",
        organisation=organisation,
        leaf_extensions=[(signing_usage, True), (document_eku, False)],
        leaf_has_key_id=True,
        friendly_name=b"ebr document signing",
        p12_path=identity.signer_p12,
        root_path=identity.root_cert,
        passphrase=identity.passphrase,
    )


def _issue_from_new_root(
    *,
    root_common_name: str,
    leaf_common_name: str,
    organisation: str,
    leaf_extensions: list[tuple[x509.ExtensionType, bool]],
    friendly_name: bytes,
    p12_path: Path,
    root_path: Path,
    passphrase: bytes,
    leaf_has_key_id: bool = False,
) -> None:
    """Create a root that issues exactly one leaf certificate, and write both out.

    `leaf_extensions` (extension, critical) say what the leaf is for; the helper adds what
    every leaf has: not a CA, and the key identifier of the root that issued it.
    """
    now = dt.datetime.now(dt.UTC) - _BACKDATE
    root_key = _new_key()
    root_name = _name(root_common_name, organisation)
    root_ski = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
    root_cert = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(_serial())
        .not_valid_before(now)
        .not_valid_after(now + _ROOT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage("key_cert_sign", "crl_sign"), critical=True)
        .add_extension(root_ski, critical=False)
        .sign(root_key, hashes.SHA256())
    )

    leaf_key = _new_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(leaf_common_name, organisation))
        .issuer_name(root_name)
        .public_key(leaf_key.public_key())
        .serial_number(_serial())
        .not_valid_before(now)
        .not_valid_after(now + _SIGNER_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    for extension, critical in leaf_extensions:
        builder = builder.add_extension(extension, critical=critical)
    if leaf_has_key_id:
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False
        )
    leaf_cert = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski), critical=False
    ).sign(root_key, hashes.SHA256())

    p12 = pkcs12.serialize_key_and_certificates(
        name=friendly_name,
        key=leaf_key,
        cert=leaf_cert,
        # The root travels inside the PKCS#12 so the file alone is a complete signer.
        cas=[root_cert],
        encryption_algorithm=serialization.BestAvailableEncryption(passphrase),
    )
    # The root's private key is deliberately never written: it exists only to issue this one
    # certificate, so a leaked pki_dir cannot be used to mint further "trusted" leaves.
    # Leaf first: a crash in between leaves a state that the ensure_* functions report.
    _write_atomically(p12_path, p12, mode=_SECRET_MODE)
    _write_atomically(
        root_path, root_cert.public_bytes(serialization.Encoding.PEM), mode=_SECRET_MODE
    )


_KEY_USAGES = (
    "digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
    "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only",
)


def _key_usage(*allowed: str) -> x509.KeyUsage:
    """A KeyUsage extension permitting exactly the usages named (x509.KeyUsage's names)."""
    unknown = set(allowed) - set(_KEY_USAGES)
    if unknown:
        raise ValueError(f"not key usages: {sorted(unknown)}")
    return x509.KeyUsage(**{usage: usage in allowed for usage in _KEY_USAGES})


def _new_key() -> rsa.RSAPrivateKey:
    # RSA, not ECDSA: for an ECDSA P-256 signer pyHanko registers the ISO/TS 32002 extension
    # and raises the catalog /Version to 2.0, which contradicts the file's PDF/A-3 (PDF 1.7)
    # claim. RSA-3072 keeps the document at 1.7 and meets the 128-bit security level.
    return rsa.generate_private_key(public_exponent=65537, key_size=3072)


def _serial() -> int:
    # Positive, at most 20 octets (RFC 5280), with 159 bits of randomness.
    return secrets.randbits(159) | 1
