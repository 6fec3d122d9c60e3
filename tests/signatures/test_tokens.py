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


def test_expired_token_is_refused():
    token = jwt.encode(
        {"sub": "u", "iat": int(time.time()) - 100, "exp": int(time.time()) - 10,
         "aud": AUDIENCE, "iss": ISSUER}, SECRET, algorithm=ALGORITHM)
    with pytest.raises(TokenError, match="log in again"):
        read_token(SECRET, token)


@pytest.mark.parametrize("missing", ["exp", "iat", "aud", "iss", "sub", "jti", "ins"])
def test_token_missing_a_required_claim_is_refused(missing):
    claims = {"sub": "u", "iat": int(time.time()), "exp": int(time.time()) + 60,
              "aud": AUDIENCE, "iss": ISSUER, "jti": "j" * 32, "ins": time.time_ns()}
    del claims[missing]
    with pytest.raises(TokenError):
        read_token(SECRET, jwt.encode(claims, SECRET, algorithm=ALGORITHM))


def test_alg_none_token_is_refused():
    def b64(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = {"sub": "admin", "iat": int(time.time()), "exp": int(time.time()) + 60,
              "aud": AUDIENCE, "iss": ISSUER}
    forged = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
    with pytest.raises(TokenError):
        read_token(SECRET, forged)


def test_token_signed_with_another_key_is_refused():
    with pytest.raises(TokenError):
        read_token(SECRET, issue_token("x" * 48, "operator", 60))


def test_oversized_token_is_refused_before_decoding():
    with pytest.raises(TokenError, match="too large"):
        read_token(SECRET, "a" * 5000)


def test_other_audience_is_refused():
    token = jwt.encode({"sub": "u", "iat": int(time.time()), "exp": int(time.time()) + 60,
                        "aud": "someone-else", "iss": ISSUER}, SECRET, algorithm=ALGORITHM)
    with pytest.raises(TokenError):
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
