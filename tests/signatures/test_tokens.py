"""Session tokens: one pinned algorithm, required claims, size cap."""

from __future__ import annotations

import base64
import json
import time

import pytest
from jose import jwt

from signatures.tokens import ALGORITHM, AUDIENCE, ISSUER, TokenError, issue_token, read_token

SECRET = "k" * 48


def test_issued_token_reads_back_with_its_subject():
    claims = read_token(SECRET, issue_token(SECRET, "operator", 60))
    assert claims.subject == "operator" and claims.expires_at - claims.issued_at == 60


def _claims(**changes: object) -> dict:
    claims = {"sub": "u", "iat": int(time.time()), "exp": int(time.time()) + 60,
              "aud": AUDIENCE, "iss": ISSUER, "jti": "j" * 32, "ins": time.time_ns()}
    return claims | changes


def test_expired_token_is_refused():
    # Complete in every other way, so expiry alone is what refuses it.
    token = jwt.encode(_claims(iat=int(time.time()) - 100, exp=int(time.time()) - 10),
                       SECRET, algorithm=ALGORITHM)
    with pytest.raises(TokenError, match=r"expired.*log in again"):
        read_token(SECRET, token)


@pytest.mark.parametrize("missing", ["exp", "iat", "aud", "iss", "sub", "jti", "ins"])
def test_token_missing_a_required_claim_is_refused(missing):
    claims = {"sub": "u", "iat": int(time.time()), "exp": int(time.time()) + 60,
              "aud": AUDIENCE, "iss": ISSUER, "jti": "j" * 32, "ins": time.time_ns()}
    del claims[missing]
    with pytest.raises(TokenError):
        read_token(SECRET, jwt.encode(claims, SECRET, algorithm=ALGORITHM))


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_token_is_refused(alg):
    forged = f"{_b64({'alg': alg, 'typ': 'JWT'})}.{_b64(_claims(sub='admin'))}."
    with pytest.raises(TokenError, match="algorithm ebr does not accept"):
        read_token(SECRET, forged)


def test_hs256_header_with_an_empty_signature_is_refused():
    forged = f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64(_claims(sub='admin'))}."
    with pytest.raises(TokenError):
        read_token(SECRET, forged)


# --- key confusion: an RSA key pair must never stand in for the HMAC secret -----------


@pytest.fixture(scope="module")
def rsa_pair() -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def test_rs256_token_is_refused_even_with_a_valid_rsa_signature(rsa_pair):
    private, public = rsa_pair
    token = jwt.encode(_claims(sub="admin"), private.decode(), algorithm="RS256")
    with pytest.raises(TokenError, match="algorithm ebr does not accept"):
        read_token(SECRET, token)
    # Not even a server misconfigured with the public key as its secret accepts it.
    with pytest.raises(TokenError):
        read_token(public.decode(), token)


def test_hs256_signed_with_a_public_key_as_the_hmac_secret_is_refused(rsa_pair):
    # The classic confusion: the attacker knows the public key and signs HMAC with it.
    import hashlib
    import hmac

    _, public = rsa_pair
    # python-jose itself refuses to HMAC with a PEM key, so forge the token by hand.
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64(_claims(sub='admin'))}"
    mac = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(TokenError, match="Signature verification failed"):
        read_token(SECRET, forged)
    with pytest.raises(TokenError):  # nor when the server's "secret" were that PEM
        read_token(public.decode(), forged)


def test_token_signed_with_another_key_is_refused():
    with pytest.raises(TokenError):
        read_token(SECRET, issue_token("x" * 48, "operator", 60))


def test_oversized_token_is_refused_before_decoding():
    with pytest.raises(TokenError, match="too large"):
        read_token(SECRET, "a" * 5000)


def test_oversized_token_is_refused_even_when_correctly_signed():
    token = jwt.encode(_claims(pad="x" * 5000), SECRET, algorithm=ALGORITHM)
    with pytest.raises(TokenError, match="too large"):
        read_token(SECRET, token)
    assert read_token(SECRET, jwt.encode(_claims(pad="x" * 100), SECRET,
                                         algorithm=ALGORITHM)).subject == "u"


def test_other_issuer_is_refused():
    with pytest.raises(TokenError):
        read_token(SECRET, jwt.encode(_claims(iss="someone-else"), SECRET, algorithm=ALGORITHM))


def test_token_issued_in_the_future_is_refused():
    later = int(time.time()) + 3600
    token = jwt.encode(_claims(iat=later, exp=later + 60), SECRET, algorithm=ALGORITHM)
    with pytest.raises(TokenError, match="issued in the future"):
        read_token(SECRET, token)


def test_other_audience_is_refused():
    token = jwt.encode(_claims(aud="someone-else"), SECRET, algorithm=ALGORITHM)
    with pytest.raises(TokenError, match="audience"):
        read_token(SECRET, token)


def test_complete_hand_made_token_reads_back():
    # The control case for the missing-claim test: with every claim present it passes.
    claims = {"sub": "u", "iat": int(time.time()), "exp": int(time.time()) + 60,
              "aud": AUDIENCE, "iss": ISSUER, "jti": "j" * 32, "ins": time.time_ns()}
    assert read_token(SECRET, jwt.encode(claims, SECRET, algorithm=ALGORITHM)).jti == "j" * 32


def test_every_issued_token_has_its_own_id_and_issue_time():
    first, second = (read_token(SECRET, issue_token(SECRET, "u", 60)) for _ in range(2))
    assert first.jti != second.jti
    assert abs(first.issued_ns / 1e9 - first.issued_at) < 1


def test_token_signed_with_hs512_under_the_same_key_is_refused():
    claims = {"sub": "u", "iat": int(time.time()), "exp": int(time.time()) + 60,
              "aud": AUDIENCE, "iss": ISSUER, "jti": "j" * 32, "ins": time.time_ns()}
    with pytest.raises(TokenError, match="algorithm"):
        read_token(SECRET, jwt.encode(claims, SECRET, algorithm="HS512"))


def test_tampered_payload_is_refused():
    token = issue_token(SECRET, "operator", 60)
    header, payload, sig = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["sub"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenError):
        read_token(SECRET, f"{header}.{forged}.{sig}")
