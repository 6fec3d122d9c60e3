"""Session tokens: the only module that touches python-jose.

One algorithm, pinned; exp/iat/aud/iss/sub/jti required; size capped before decoding,
so `alg=none`, key confusion and oversized tokens are refused up front. Each token has a
unique `jti` (what logout and the idle timeout act on) and its issue time in nanoseconds
(`ins`), which revocation of all of a user's tokens compares against.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from jose import jwt
from jose.exceptions import JOSEError

ALGORITHM = "HS256"
AUDIENCE = "ebr-api"
ISSUER = "ebr"
MAX_TOKEN_BYTES = 4096
# API processes on several hosts issue and read tokens: tolerate this much clock skew.
CLOCK_SKEW_S = 60
_REQUIRED = {f"require_{c}": True for c in ("exp", "iat", "aud", "iss", "sub", "jti")}


class TokenError(Exception):
    """The token is missing, malformed, expired or not ours: log in again."""


@dataclass(frozen=True)
class TokenClaims:
    subject: str
    issued_at: int
    expires_at: int
    jti: str
    issued_ns: int


def issue_token(secret: str, subject: str, ttl_s: int) -> str:
    now_ns = time.time_ns()
    now = now_ns // 1_000_000_000
    claims = {
        "sub": subject,
        "iat": now,
        "exp": now + ttl_s,
        "aud": AUDIENCE,
        "iss": ISSUER,
        "jti": secrets.token_urlsafe(24),
        "ins": now_ns,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_token(secret: str, token: str) -> TokenClaims:
    if not token or len(token.encode()) > MAX_TOKEN_BYTES:
        raise TokenError("Session token missing or too large: log in again.")
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") != ALGORITHM:
            raise TokenError("Session token uses an algorithm ebr does not accept.")
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options=_REQUIRED,
        )
    except JOSEError as exc:  # JWTError, and JWKError for a key of the wrong kind
        raise TokenError(f"Session token rejected ({exc}): log in again.") from exc
    if claims["iat"] > time.time() + CLOCK_SKEW_S:
        # python-jose does not check this; a token from the future means a wrong clock.
        raise TokenError("Session token issued in the future: check the server clocks, "
                         "then log in again.")
    jti, issued_ns = claims.get("jti"), claims.get("ins")
    # The signature already vouches for these; the checks catch a token of another shape.
    if not isinstance(jti, str) or not 16 <= len(jti) <= 64:
        raise TokenError("Session token has no valid id: log in again.")
    if not isinstance(issued_ns, int) or isinstance(issued_ns, bool):
        raise TokenError("Session token has no issue time: log in again.")
    return TokenClaims(
        subject=str(claims["sub"]),
        issued_at=claims["iat"],
        expires_at=claims["exp"],
        jti=jti,
        issued_ns=issued_ns,
    )
