"""Seal a rendered batch record with a PAdES signature (pyHanko), offline."""

from __future__ import annotations

import io
import logging

from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.sign import fields, signers
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import PathBuildingError, PathValidationError

from reports.errors import SigningError, SigningIdentityError, require_worker_thread
from reports.pki import SigningIdentity, load_root

log = logging.getLogger(__name__)

SIGNATURE_FIELD = "ebr-release"
# Room left for the CMS signature container beyond the certificates it carries (signed
# attributes, the signature value, DER overhead). Sized for ECDSA and RSA up to 4096 bits.
_CMS_OVERHEAD = 8192


def sign_pdf(
    pdf: bytes,
    identity: SigningIdentity,
    *,
    reason: str = "Batch record release",
    location: str = "",
) -> bytes:
    """Return `pdf` with an invisible PAdES certification signature over the whole file.

    A certification (not approval) signature with "no changes allowed": the released record
    is final, and any PDF viewer, not only ebr's verifier, flags later edits as breaking it.
    """
    require_worker_thread("sign_pdf")
    signer = _load_signer(identity)
    root = _load_root_asn1(identity)
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
        validation_context=ValidationContext(trust_roots=[root], allow_fetching=False),
    )
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    except (PdfError, ValueError) as exc:
        raise SigningError(f"the rendered batch record is not a readable PDF: {exc}") from exc

    # Invisible field: a visible stamp would draw with a non-embedded font and break PDF/A.
    pdf_signer = signers.PdfSigner(
        metadata, signer=signer, new_field_spec=fields.SigFieldSpec(SIGNATURE_FIELD)
    )
    try:
        output = pdf_signer.sign_pdf(writer, bytes_reserved=_bytes_reserved(signer))
    except PyHankoSigningError as exc:
        cause = exc.__cause__
        if isinstance(cause, (PathBuildingError, PathValidationError)):
            raise SigningError(
                f"the signing certificate in {identity.signer_p12} does not validate against "
                f"{identity.root_cert} ({cause}); renew the signing identity or point it at "
                "the root that issued it"
            ) from exc
        raise SigningError(f"pyHanko could not sign the batch record: {exc}") from exc
    except PdfError as exc:
        raise SigningError(f"pyHanko could not write the signed batch record: {exc}") from exc
    return output.getvalue()


def _load_signer(identity: SigningIdentity) -> signers.SimpleSigner:
    try:
        data = identity.signer_p12.read_bytes()
    except OSError as exc:
        raise SigningIdentityError(
            f"cannot read the signing key {identity.signer_p12}: {exc.strerror or exc}"
        ) from exc
    try:
        # Any PKCS#12 works here (demo PKI or a site's own); its extra certificates (the
        # chain) are embedded in the signature so verifiers can build the path offline.
        return signers.SimpleSigner.load_pkcs12_data(
            data, other_certs=(), passphrase=identity.passphrase
        )
    except ValueError as exc:
        raise SigningIdentityError(
            f"cannot open {identity.signer_p12}: wrong passphrase or not a PKCS#12 file "
            "with a key and certificate"
        ) from exc


def _load_root_asn1(identity: SigningIdentity) -> asn1_x509.Certificate:
    root = load_root(identity.root_cert)
    return asn1_x509.Certificate.load(root.public_bytes(Encoding.DER))


def _bytes_reserved(signer: signers.SimpleSigner) -> int:
    # Sizing the container from the certificates it will carry avoids pyHanko's default
    # estimate, a full dummy signing pass that roughly doubles signing time.
    certs = [signer.signing_cert, *signer.cert_registry]
    size = sum(len(cert.dump()) for cert in certs) + _CMS_OVERHEAD
    return -(-size // 1024) * 1024
