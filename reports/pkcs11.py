"""Signing with a key held in a PKCS#11 token (HSM, smart card, SoftHSM) through pyHanko.

python-pkcs11 (pyHanko's `pkcs11` extra) is imported only when a token is configured, so
sites that sign with a PKCS#12 file do not need it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from reports.errors import SigningIdentityError

if TYPE_CHECKING:
    from pyhanko.sign import signers

    from reports.pki import Pkcs11Identity


def check_pkcs11_settings(identity: Pkcs11Identity) -> None:
    """Refuse an unusable configuration up front, naming the setting to fix."""
    problems = []
    if not Path(identity.module).is_file():
        problems.append(f"the PKCS#11 module {identity.module} does not exist")
    if not identity.token_label:
        problems.append("no token label is configured")
    if not identity.key_label:
        problems.append("no key label is configured")
    if not identity.pin:
        problems.append("no PIN is configured")
    if not Path(identity.root_cert).is_file():
        problems.append(f"the root certificate {identity.root_cert} does not exist")
    if problems:
        raise SigningIdentityError(
            "the PKCS#11 signing settings are not usable: " + "; ".join(problems)
            + " (EBR_SIGNING_PKCS11_MODULE, _TOKEN, _KEY_LABEL, _PIN and EBR_SIGNING_ROOT)"
        )


@contextlib.contextmanager
def pkcs11_signer(identity: Pkcs11Identity) -> Iterator[signers.Signer]:
    """An open session on the token and a pyHanko signer over its key; closed afterwards."""
    check_pkcs11_settings(identity)
    try:
        from pkcs11 import PKCS11Error
        from pyhanko.config.pkcs11 import TokenCriteria
        from pyhanko.sign.pkcs11 import PKCS11Signer, open_pkcs11_session
    except ImportError as exc:
        raise SigningIdentityError(
            "signing with a PKCS#11 token needs python-pkcs11: install ebr with the "
            "'pkcs11' extra (pip install -e '.[pkcs11]')"
        ) from exc
    try:
        session = open_pkcs11_session(
            str(identity.module),
            token_criteria=TokenCriteria(label=identity.token_label),
            user_pin=identity.pin,
        )
    except (PKCS11Error, OSError, RuntimeError) as exc:
        raise SigningIdentityError(
            f"cannot open PKCS#11 token {identity.token_label!r} with {identity.module} "
            f"({type(exc).__name__}: {exc}); check the token label and the PIN"
        ) from exc
    try:
        try:
            signer = PKCS11Signer(
                session,
                key_label=identity.key_label,
                cert_label=identity.cert_label or identity.key_label,
            )
        except (PKCS11Error, RuntimeError, ValueError) as exc:
            raise SigningIdentityError(
                f"token {identity.token_label!r} has no usable key and certificate labelled "
                f"{identity.key_label!r} ({type(exc).__name__}: {exc})"
            ) from exc
        yield signer
    finally:
        session.close()
