"""Seal a rendered batch record with PAdES signatures (pyHanko), offline.

The document carries the system's certification signature (the record is complete and
unaltered) and, for a dispositioned batch, QA's approval signature; with a timestamp
authority both are PAdES B-T, and optionally B-LTA (validation data and a document
timestamp).
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ec import ECDSA, EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.sign import fields, signers
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko.sign.signers.pdf_signer import DSSContentSettings, TimestampDSSContentSettings
from pyhanko.sign.timestamps import HTTPTimeStamper, TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import PathBuildingError, PathValidationError
from pyhanko_certvalidator.registry import SimpleCertificateStore

from reports.contract import APPROVAL_FIELD, SIGNATURE_FIELD
from reports.errors import SigningError, require_worker_thread
from reports.pkcs11 import pkcs11_signer
from reports.pki import (
    LocalTsa,
    Pkcs11Identity,
    SignerMaterial,
    SigningIdentity,
    load_root,
    load_signer_material,
    load_tsa_material,
)

log = logging.getLogger(__name__)

# Room for the CMS container beyond the certificates it carries: signed attributes, the
# signature value (512 bytes for RSA-4096) and DER overhead, with a wide margin because a
# too-small reservation fails the signing outright.
_CMS_OVERHEAD = 8192
# A timestamp token carries the TSA's certificates and its own signature.
_TSA_RESERVE = 12 * 1024
_TSA_TIMEOUT_S = 10
# A token's certificate chain is unknown until pulled from it; RSA-4096 chains of three
# certificates fit with room to spare.
_PKCS11_RESERVE = 16 * 1024
_HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


@dataclass(frozen=True)
class Approval:
    """QA's Part 11 disposition signature, mirrored as the document's approval signature.

    The PDF approval signature is made with the system's key (QA is not at the worker when
    the record is published, and a per-user key held by the server would prove no more);
    it names QA's printed name in /Name and states the decision, meaning, user id, signing
    time and signed-content hash of the Part 11 signature in /Reason, so any PDF viewer's
    signature panel shows who released the batch, and the verifier checks it against the
    embedded record.
    """

    decision: str
    full_name: str
    username: str
    meaning: str
    signed_at: str
    content_sha256: str
    signature_id: int | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Approval | None:
        """The approval a record calls for: its signed release or rejection, if any."""
        release = record.get("release")
        signature = release.get("signature") if isinstance(release, Mapping) else None
        if not isinstance(signature, Mapping):
            return None
        return cls(
            decision=str(release.get("decision") or ""),  # type: ignore[union-attr]
            full_name=str(signature.get("full_name") or ""),
            username=str(signature.get("username") or ""),
            meaning=str(signature.get("meaning") or ""),
            signed_at=str(signature.get("signed_at") or ""),
            content_sha256=str(signature.get("content_sha256") or ""),
            signature_id=signature.get("signature_id"),
        )

    def reason(self) -> str:
        number = f" #{self.signature_id}" if self.signature_id else ""
        return (
            f"{self.decision.capitalize()} by {self.full_name} ({self.username}): "
            f"Part 11 signature{number} '{self.meaning}' at {self.signed_at}, "
            f"signed content SHA-256 {self.content_sha256}"
        )


@dataclass(frozen=True)
class Timestamping:
    """Where signature timestamps come from, and whether to go on to PAdES B-LTA.

    B-T: each signature carries an RFC 3161 timestamp. B-LTA additionally embeds the
    validation data (certificates, and revocation data when the PKI publishes any) in a
    document security store and seals everything with a document timestamp, so the
    file can be validated offline long after the certificates expire.
    """

    stamper: TimeStamper
    roots: tuple[Path, ...]
    source: str
    lta: bool = False


def http_timestamping(url: str, roots: Sequence[Path] = (), *, lta: bool = False) -> Timestamping:
    """A timestamp authority reached over HTTP (RFC 3161)."""
    return Timestamping(
        HTTPTimeStamper(url, timeout=_TSA_TIMEOUT_S),
        tuple(Path(r) for r in roots),
        f"the timestamp authority at {url}",
        lta,
    )


def local_timestamping(tsa: LocalTsa, *, lta: bool = False) -> Timestamping:
    """The development PKI's TSA, in-process: real RFC 3161 tokens, no network."""
    material = load_tsa_material(tsa)
    key_der = material.key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    stamper = DummyTimeStamper(
        tsa_cert=_to_asn1(material.cert),
        tsa_key=asn1_keys.PrivateKeyInfo.load(key_der),
        certs_to_embed=SimpleCertificateStore.from_certs([_to_asn1(c) for c in material.chain]),
    )
    return Timestamping(stamper, (tsa.root_cert,), f"the development TSA ({tsa.tsa_p12})", lta)


SigningSource = SigningIdentity | Pkcs11Identity
# B-LTA: the validation data goes into the DSS *before* the document timestamp, so that
# the timestamp covers every byte of the file. (pyHanko's default appends a DSS update
# after it, which would leave a final revision no signature covers: the verifier treats
# any such revision as an alteration.) VRI entries can only be written after a timestamp,
# so there are none; validators use the DSS as a whole.
_DSS_FIRST = DSSContentSettings(
    include_vri=False,
    next_ts_settings=TimestampDSSContentSettings(include_vri=False, update_before_ts=True),
)


def seal_record(
    pdf: bytes,
    identity: SigningSource,
    *,
    approval: Approval | None = None,
    reason: str = "Batch record complete: certified by the system",
    location: str = "",
    timestamping: Timestamping | None = None,
) -> bytes:
    """Certify `pdf` with the system's signature and add QA's approval signature.

    1. A PAdES certification signature by the system key over the whole rendered record.
       With an approval to follow it allows exactly that (DocMDP: form filling and
       signing, the approval field already in place); without one, no changes at all.
    2. With `approval`: a second, approval signature in the pre-created field, naming
       the QA signer.
    3. With `timestamping`: each signature is timestamped (B-T); with `lta`, validation
       data and a document timestamp follow (B-LTA).

    An unreachable TSA or a broken key fails the whole seal; nothing weaker is returned.
    """
    require_worker_thread("seal_record")
    tsa_roots = [_to_asn1(load_root(path)) for path in (timestamping.roots if timestamping else ())]
    with _signer(identity) as (signer, reserved):
        root = _to_asn1(load_root(identity.root_cert))
        # Validate our own certificate before signing: an expired or wrongly issued signer
        # should fail here, with a message, not later in front of an auditor. The TSA roots
        # only let timestamp tokens validate; the signer must chain to the site root.
        context = ValidationContext(trust_roots=[root, *tsa_roots], allow_fetching=False)
        try:
            writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
        except (PdfError, ValueError) as exc:
            raise SigningError(f"the rendered batch record is not a readable PDF: {exc}") from exc
        if writer.prev.embedded_signatures:
            raise SigningError(
                "this PDF is already signed; a batch record is sealed once: sign a freshly "
                "rendered PDF instead"
            )
        if approval is not None:
            # The approval field exists before certification, so the approval only fills a
            # field the certification allowed to be filled: no new structure afterwards.
            fields.append_signature_field(writer, fields.SigFieldSpec(APPROVAL_FIELD))
        lta = (
            {"embed_validation_info": True, "use_pades_lta": True, "dss_settings": _DSS_FIRST}
            if timestamping is not None and timestamping.lta
            else {}
        )
        certification = signers.PdfSignatureMetadata(
            field_name=SIGNATURE_FIELD,
            subfilter=fields.SigSeedSubFilter.PADES,
            md_algorithm="sha256",
            reason=reason or None,
            location=location or None,
            certify=True,
            docmdp_permissions=fields.MDPPerm.FILL_FORMS if approval else fields.MDPPerm.NO_CHANGES,
            validation_context=context,
            **({} if approval else lta),
        )
        output = _sign(
            writer, certification, signer, reserved, timestamping, identity,
            new_field=fields.SigFieldSpec(SIGNATURE_FIELD),
        )
        if approval is None:
            return output
        approval_meta = signers.PdfSignatureMetadata(
            field_name=APPROVAL_FIELD,
            subfilter=fields.SigSeedSubFilter.PADES,
            md_algorithm="sha256",
            name=approval.full_name,
            reason=approval.reason(),
            location=location or None,
            validation_context=context,
            **lta,
        )
        writer = IncrementalPdfFileWriter(io.BytesIO(output), strict=False)
        return _sign(writer, approval_meta, signer, reserved, timestamping, identity)


def sign_pdf(
    pdf: bytes,
    identity: SigningSource,
    *,
    reason: str = "Batch record release",
    location: str = "",
    timestamp_url: str | None = None,
    timestamp_roots: Sequence[Path] = (),
) -> bytes:
    """Only the system's certification signature (no approval), optionally B-T.

    For records without a QA disposition (an aborted batch) and for callers that seal a
    PDF on their own; publication uses `seal_record`.
    """
    timestamping = http_timestamping(timestamp_url, timestamp_roots) if timestamp_url else None
    return seal_record(
        pdf, identity, reason=reason, location=location, timestamping=timestamping
    )


def _sign(
    writer: IncrementalPdfFileWriter,
    metadata: signers.PdfSignatureMetadata,
    signer: signers.Signer,
    reserved: int,
    timestamping: Timestamping | None,
    identity: SigningSource,
    new_field: fields.SigFieldSpec | None = None,
) -> bytes:
    # Invisible fields: a visible stamp would draw with a non-embedded font and break PDF/A.
    pdf_signer = signers.PdfSigner(
        metadata,
        signer=signer,
        new_field_spec=new_field,
        timestamper=timestamping.stamper if timestamping else None,
    )
    total = reserved + (_TSA_RESERVE if timestamping else 0)
    try:
        return pdf_signer.sign_pdf(writer, bytes_reserved=total).getvalue()
    except PyHankoSigningError as exc:
        cause = exc.__cause__
        if isinstance(cause, (PathBuildingError, PathValidationError)):
            raise SigningError(
                f"the signing certificate of {_describe(identity)} does not validate against "
                f"{identity.root_cert} ({cause}); renew the signing identity or point it at "
                "the root that issued it"
            ) from exc
        raise SigningError(f"pyHanko could not sign the batch record: {exc}") from exc
    except (TimestampRequestError, OSError, TimeoutError) as exc:
        # TimestampRequestError is itself an OSError; connection failures are OSErrors too.
        source = timestamping.source if timestamping else "the timestamp authority"
        raise SigningError(
            f"{source} did not issue a timestamp ({exc!r}); check that it is reachable "
            "from this worker, or configure no TSA to sign without a timestamp"
        ) from exc
    except PdfError as exc:
        raise SigningError(f"pyHanko could not write the signed batch record: {exc}") from exc


def _describe(identity: SigningSource) -> str:
    if isinstance(identity, Pkcs11Identity):
        return f"key {identity.key_label!r} on PKCS#11 token {identity.token_label!r}"
    return str(identity.signer_p12)


@contextlib.contextmanager
def _signer(identity: SigningSource) -> Iterator[tuple[signers.Signer, int]]:
    """The pyHanko signer for `identity` and the signature container size to reserve."""
    if isinstance(identity, SigningIdentity):
        material = load_signer_material(identity)
        yield _KeySigner(material), _bytes_reserved(material)
        return
    with pkcs11_signer(identity) as signer:
        # The token's certificates are only known once pulled: reserve generously.
        yield signer, _PKCS11_RESERVE


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
