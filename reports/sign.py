"""Seal a rendered batch record with a PAdES signature (pyHanko), offline."""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from pathlib import Path

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ec import ECDSA, EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.sign import fields, signers
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import PathBuildingError, PathValidationError
from pyhanko_certvalidator.registry import SimpleCertificateStore

from reports.contract import SIGNATURE_FIELD
from reports.errors import SigningError, require_worker_thread
from reports.pki import SignerMaterial, SigningIdentity, load_root, load_signer_material

log = logging.getLogger(__name__)

# Room for the CMS container beyond the certificates it carries: signed attributes, the
# signature value (512 bytes for RSA-4096) and DER overhead, with a wide margin because a
# too-small reservation fails the signing outright.
_CMS_OVERHEAD = 8192
# A timestamp token carries the TSA's certificates and its own signature.
_TSA_RESERVE = 12 * 1024
_TSA_TIMEOUT_S = 10
_HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


def sign_pdf(
    pdf: bytes,
    identity: SigningIdentity,
    *,
    reason: str = "Batch record release",
    location: str = "",
    timestamp_url: str | None = None,
    timestamp_roots: Sequence[Path] = (),
) -> bytes:
    """Return `pdf` with an invisible PAdES certification signature over the whole file.

    With `timestamp_url` (an RFC 3161 timestamp authority) the signature carries a
    signature timestamp (PAdES B-T): the signing time is then proven by the TSA, not
    claimed by this machine's clock. An unreachable or failing TSA fails the signing;
    it never silently degrades to an untimestamped signature. `timestamp_roots` are the
    roots that certify the TSA: pyHanko validates the TSA's chain before embedding a token.

    A certification (not approval) signature with "no changes allowed": the released record
    is final, and any PDF viewer, not only ebr's verifier, flags later edits as breaking it.
    """
    require_worker_thread("sign_pdf")
    material = load_signer_material(identity)
    signer = _KeySigner(material)
    root = _to_asn1(load_root(identity.root_cert))
    tsa_roots = [_to_asn1(load_root(path)) for path in timestamp_roots]
    metadata = signers.PdfSignatureMetadata(
        field_name=SIGNATURE_FIELD,
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        reason=reason or None,
        location=location or None,
        certify=True,
        docmdp_permissions=fields.MDPPerm.NO_CHANGES,
        # Validate our own certificate before signing: an expired or wrongly issued signer
        # should fail here, with a message, not later in front of an auditor.
        # The TSA roots only let the timestamp token's chain validate; the signing
        # certificate must still chain to the site root, which issued it.
        validation_context=ValidationContext(trust_roots=[root, *tsa_roots], allow_fetching=False),
    )
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    except (PdfError, ValueError) as exc:
        raise SigningError(f"the rendered batch record is not a readable PDF: {exc}") from exc
    if writer.prev.embedded_signatures:
        # The release seal forbids any later change, a second signature included.
        raise SigningError(
            "this PDF is already signed; a released batch record is sealed once: sign a "
            "freshly rendered PDF instead"
        )

    # Invisible field: a visible stamp would draw with a non-embedded font and break PDF/A.
    timestamper = HTTPTimeStamper(timestamp_url, timeout=_TSA_TIMEOUT_S) if timestamp_url else None
    pdf_signer = signers.PdfSigner(
        metadata,
        signer=signer,
        new_field_spec=fields.SigFieldSpec(SIGNATURE_FIELD),
        timestamper=timestamper,
    )
    reserved = _bytes_reserved(material) + (_TSA_RESERVE if timestamper else 0)
    try:
        output = pdf_signer.sign_pdf(writer, bytes_reserved=reserved)
    except PyHankoSigningError as exc:
        cause = exc.__cause__
        if isinstance(cause, (PathBuildingError, PathValidationError)):
            raise SigningError(
                f"the signing certificate in {identity.signer_p12} does not validate against "
                f"{identity.root_cert} ({cause}); renew the signing identity or point it at "
                "the root that issued it"
            ) from exc
        raise SigningError(f"pyHanko could not sign the batch record: {exc}") from exc
    except (TimestampRequestError, OSError, TimeoutError) as exc:
        # TimestampRequestError is itself an OSError; connection failures are OSErrors too.
        raise SigningError(
            f"the timestamp authority at {timestamp_url} did not issue a timestamp ({exc!r}); "
            "check that it is reachable from this worker, or unset the TSA URL to sign "
            "without a timestamp"
        ) from exc
    except PdfError as exc:
        raise SigningError(f"pyHanko could not write the signed batch record: {exc}") from exc
    return output.getvalue()


class _KeySigner(signers.Signer):
    """pyHanko signer over an already-loaded private key.

    pyHanko's SimpleSigner re-imports its key on every signature, and OpenSSL re-validates
    an RSA key on import (~150 ms for RSA-3072); holding the key object avoids that.
    """

    def __init__(self, material: SignerMaterial) -> None:
        super().__init__(
            signing_cert=_to_asn1(material.cert),
            cert_registry=SimpleCertificateStore.from_certs(
                [_to_asn1(cert) for cert in material.chain]
            ),
        )
        self._key = material.key
        if isinstance(self._key, EllipticCurvePrivateKey):
            # pyHanko marks ECDSA signatures with the ISO/TS 32002 extension and PDF 2.0,
            # which contradicts the PDF/A-3 (PDF 1.7) claim of the rendered record.
            log.warning(
                "signing with an ECDSA key: the signed PDF will declare PDF 2.0 and no longer "
                "be a consistent PDF/A-3 file; prefer an RSA signing certificate"
            )

    async def async_sign_raw(
        self, data: bytes, digest_algorithm: str, dry_run: bool = False
    ) -> bytes:
        mechanism = self.get_signature_mechanism_for_digest(digest_algorithm).signature_algo
        hash_type = _HASHES.get(digest_algorithm)
        if hash_type is None:
            raise SigningError(f"digest algorithm {digest_algorithm} is not supported")
        if mechanism == "rsassa_pkcs1v15" and isinstance(self._key, RSAPrivateKey):
            return self._key.sign(data, PKCS1v15(), hash_type())
        if mechanism == "ecdsa" and isinstance(self._key, EllipticCurvePrivateKey):
            return self._key.sign(data, ECDSA(hash_type()))
        raise SigningError(
            f"the signing key ({type(self._key).__name__}) cannot produce {mechanism} "
            "signatures; use an RSA (PKCS#1 v1.5) or ECDSA key"
        )


def _to_asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))


def _bytes_reserved(material: SignerMaterial) -> int:
    # Sizing the container from the certificates it will carry avoids pyHanko's default
    # estimate, a full dummy signing pass that roughly doubles signing time.
    size = sum(len(cert.public_bytes(Encoding.DER)) for cert in (material.cert, *material.chain))
    return -(-(size + _CMS_OVERHEAD) // 1024) * 1024
