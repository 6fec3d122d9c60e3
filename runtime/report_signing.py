"""Settings -> what the report activity signs with, timestamps with, and prints about
equipment. Part of the worker's composition root (docs/reports.md, "Keys and settings").
"""

from __future__ import annotations

from typing import Any

from devices.register import EquipmentRegister
from reports.errors import SigningIdentityError
from reports.pki import Pkcs11Identity, SigningIdentity, ensure_local_tsa, ensure_signing_identity
from reports.sign import SigningSource, Timestamping, http_timestamping, local_timestamping
from settings.config import Settings

LOCAL_TSA = "local"


def signing_source(settings: Settings) -> SigningSource:
    """The signing key: a PKCS#11 token, a PKCS#12 file, or the development PKI.

    Production sites set one of the first two (and the root their certificate chains to);
    without either, the development PKI under var/pki is created on first use.
    """
    passphrase = settings.secrets.signing_passphrase.encode()
    if settings.signing_pkcs11_module is not None:
        if settings.signing_root is None:
            raise SigningIdentityError(
                "EBR_SIGNING_PKCS11_MODULE is set but EBR_SIGNING_ROOT is not: give the PEM "
                "root certificate the token's signing certificate chains to"
            )
        pin = settings.signing_pkcs11_pin.get_secret_value() if settings.signing_pkcs11_pin else ""
        return Pkcs11Identity(
            module=settings.signing_pkcs11_module,
            token_label=settings.signing_pkcs11_token or "",
            key_label=settings.signing_pkcs11_key_label or "",
            root_cert=settings.signing_root,
            pin=pin,
        )
    if settings.signing_p12 is not None:
        if settings.signing_root is None:
            raise SigningIdentityError(
                "EBR_SIGNING_P12 is set but EBR_SIGNING_ROOT is not: give the PEM root "
                "certificate that issued the signing certificate"
            )
        return SigningIdentity(
            root_cert=settings.signing_root, signer_p12=settings.signing_p12, passphrase=passphrase
        )
    return ensure_signing_identity(settings.pki_dir, passphrase, settings.site_name)


def timestamping(settings: Settings) -> Timestamping | None:
    """None without a TSA; the development TSA for `EBR_TSA_URL=local`; else HTTP."""
    if not settings.tsa_url:
        return None
    if settings.tsa_url == LOCAL_TSA:
        if settings.env == "production":
            raise SigningIdentityError(
                "EBR_TSA_URL=local is the development PKI's own timestamp authority, which "
                "proves nothing beyond this machine's clock: give a real TSA's URL"
            )
        passphrase = settings.secrets.signing_passphrase.encode()
        tsa = ensure_local_tsa(settings.pki_dir, passphrase, settings.site_name)
        return local_timestamping(tsa, lta=settings.pades_lta)
    roots = [settings.tsa_root] if settings.tsa_root else []
    return http_timestamping(settings.tsa_url, roots, lta=settings.pades_lta)


def equipment_lookup(register: EquipmentRegister):  # type: ignore[no-untyped-def]
    """equipment id -> its register entry as the record prints it."""

    def lookup(equipment_id: str) -> dict[str, Any] | None:
        entry = register.get(equipment_id)
        due, cleaned = entry.calibration_due, entry.cleaning.cleaned_at
        return {
            "equipment_id": entry.equipment_id,
            "equipment_class": entry.equipment_class,
            "description": entry.description,
            "serial_number": entry.serial_number,
            "calibration_due": due.isoformat() if due else None,
            "cleaning_status": entry.cleaning.status,
            "cleaned_at": cleaned.isoformat() if cleaned else None,
        }

    return lookup
