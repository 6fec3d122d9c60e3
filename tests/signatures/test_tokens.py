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


@pytest.mark.parametrize("missing", ["exp", "iat", "aud", "iss", "sub"])
def test_token_missing_a_required_claim_is_refused(missing):
    claims = {"sub": "u", "iat": int(time.time()), "exp": int(time.time()) + 60,
              "aud": AUDIENCE, "iss": ISSUER}
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
