"""Signing with a key in a PKCS#11 token (SoftHSM), and the settings that select the key.

The token test needs SoftHSM (`softhsm2`, installed by .ci/run when it runs as root) and
python-pkcs11 (the `pkcs11` extra); without them it skips and says why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from pydantic import SecretStr

from reports.errors import SigningIdentityError
from reports.pkcs11 import check_pkcs11_settings
from reports.pki import Pkcs11Identity, SigningIdentity, load_signer_material
from reports.render import RenderedPdf
from reports.sign import Approval, seal_record
from reports.verify import verify_pdf
from runtime.report_signing import signing_source, timestamping
from settings.config import Settings

MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
)
PIN = "1234"
TOKEN = "ebr-test"


def _softhsm_module() -> str | None:
    return next((m for m in MODULE_CANDIDATES if Path(m).exists()), None)


@pytest.fixture(scope="module")
def token(
    tmp_path_factory: pytest.TempPathFactory, identity: SigningIdentity
) -> Pkcs11Identity:
    """A SoftHSM token holding the test identity's key and certificate."""
    module = _softhsm_module()
    if module is None or shutil.which("softhsm2-util") is None:
        pytest.skip("SoftHSM is not installed (apt-get install softhsm2; .ci/run does it as root)")
    pkcs11 = pytest.importorskip("pkcs11", reason="python-pkcs11 missing: pip install '.[pkcs11]'")
    home = tmp_path_factory.mktemp("softhsm")
    (home / "tokens").mkdir()
    conf = home / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {home / 'tokens'}\nobjectstore.backend = file\n")
    # SoftHSM reads its configuration when the library is first initialised in this process.
    os.environ["SOFTHSM2_CONF"] = str(conf)
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}

    def util(*args: str) -> None:
        subprocess.run(["softhsm2-util", *args], check=True, env=env, capture_output=True,
                       timeout=60)

    util("--init-token", "--free", "--label", TOKEN, "--pin", PIN, "--so-pin", "5678")
    material = load_signer_material(identity)
    key_pem = home / "key.pem"
    key_pem.write_bytes(material.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8,
                                                   NoEncryption()))
    util("--import", str(key_pem), "--token", TOKEN, "--label", "signer", "--id", "01",
         "--pin", PIN)
    key_pem.unlink()
    # The certificate goes in beside the key, under the same label and id.
    der = material.cert.public_bytes(Encoding.DER)
    tbs = asn1_x509.Certificate.load(der)["tbs_certificate"]
    lib = pkcs11.lib(module)
    with lib.get_token(token_label=TOKEN).open(rw=True, user_pin=PIN) as session:
        session.create_object({
            pkcs11.Attribute.CLASS: pkcs11.ObjectClass.CERTIFICATE,
            pkcs11.Attribute.CERTIFICATE_TYPE: pkcs11.CertificateType.X_509,
            pkcs11.Attribute.TOKEN: True,
            pkcs11.Attribute.LABEL: "signer",
            pkcs11.Attribute.ID: b"\x01",
            pkcs11.Attribute.VALUE: der,
            pkcs11.Attribute.SUBJECT: tbs["subject"].dump(),
            pkcs11.Attribute.ISSUER: tbs["issuer"].dump(),
            pkcs11.Attribute.SERIAL_NUMBER: tbs["serial_number"].dump(),
        })
    return Pkcs11Identity(module=Path(module), token_label=TOKEN, key_label="signer",
                          root_cert=identity.root_cert, pin=PIN)


def test_record_sealed_with_a_token_key_verifies(
    token: Pkcs11Identity, rendered: RenderedPdf, record_copy: dict
) -> None:
    approval = Approval.from_record(record_copy)
    pdf = seal_record(rendered.pdf, token, approval=approval)
    result = verify_pdf(pdf, token.root_cert, record_copy)
    assert result.ok, result.problems
    assert result.approval is not None and result.approval["name"] == "Quinn Quality"


def test_wrong_pin_is_a_signing_identity_error(
    token: Pkcs11Identity, rendered: RenderedPdf
) -> None:
    wrong = Pkcs11Identity(module=token.module, token_label=token.token_label,
                           key_label=token.key_label, root_cert=token.root_cert, pin="0000")
    with pytest.raises(SigningIdentityError, match="check the token label and the PIN"):
        seal_record(rendered.pdf, wrong)


def test_incomplete_token_settings_name_every_problem(tmp_path: Path) -> None:
    identity = Pkcs11Identity(module=tmp_path / "nope.so", token_label="", key_label="",
                              root_cert=tmp_path / "root.pem", pin="")
    with pytest.raises(SigningIdentityError) as caught:
        check_pkcs11_settings(identity)
    message = str(caught.value)
    for expected in ("nope.so does not exist", "no token label", "no key label", "no PIN",
                     "root.pem does not exist", "EBR_SIGNING_PKCS11_MODULE"):
        assert expected in message


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(var_dir=tmp_path, env="test", _env_file=None, **values)  # type: ignore[arg-type]


def test_settings_choose_token_then_pkcs12_then_the_development_pki(tmp_path: Path) -> None:
    root = tmp_path / "site-root.pem"
    token_settings = _settings(
        tmp_path, signing_pkcs11_module=tmp_path / "lib.so", signing_pkcs11_token="HSM1",
        signing_pkcs11_key_label="ebmr", signing_pkcs11_pin=SecretStr("9999"), signing_root=root,
    )
    chosen = signing_source(token_settings)
    assert isinstance(chosen, Pkcs11Identity)
    assert (chosen.token_label, chosen.key_label, chosen.pin) == ("HSM1", "ebmr", "9999")
    assert "9999" not in repr(chosen)
    p12 = signing_source(_settings(tmp_path, signing_p12=tmp_path / "s.p12", signing_root=root))
    assert isinstance(p12, SigningIdentity) and p12.signer_p12 == tmp_path / "s.p12"
    dev = signing_source(_settings(tmp_path))
    assert isinstance(dev, SigningIdentity) and dev.signer_p12 == tmp_path / "pki" / "signer.p12"


@pytest.mark.parametrize("key_setting", ["signing_p12", "signing_pkcs11_module"])
def test_a_production_key_without_its_root_is_refused(tmp_path: Path, key_setting: str) -> None:
    with pytest.raises(SigningIdentityError, match="EBR_SIGNING_ROOT"):
        signing_source(_settings(tmp_path, **{key_setting: tmp_path / "x"}))


def test_the_local_tsa_is_refused_in_production_and_built_otherwise(tmp_path: Path) -> None:
    assert timestamping(_settings(tmp_path)) is None
    local = timestamping(_settings(tmp_path, tsa_url="local", pades_lta=True))
    assert local is not None and local.lta and (tmp_path / "pki" / "tsa-root.pem").exists()
    remote = timestamping(_settings(tmp_path, tsa_url="http://tsa.example/", tsa_root=tmp_path))
    assert remote is not None and not remote.lta and "tsa.example" in remote.source
    production = Settings(var_dir=tmp_path, env="production", _env_file=None, tsa_url="local",
                          jwt_secret="x" * 64, signing_passphrase="p" * 32)  # type: ignore[call-arg]
    with pytest.raises(SigningIdentityError, match="EBR_TSA_URL=local"):
        timestamping(production)
