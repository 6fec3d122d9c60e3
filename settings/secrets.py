"""Secrets generated on first run into `var/secrets.json` (mode 0600).

Environment variables override the file (`EBR_JWT_SECRET`, `EBR_SIGNING_PASSPHRASE`).
In production, a missing or known-default secret is refused rather than generated,
so a deployment never runs on a key that someone else can read in a repository.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

# Values that must never protect real records (published in docs and examples).
KNOWN_DEFAULTS = frozenset({"", "changeme", "secret", "ebr", "ebr-dev-secret"})
MIN_JWT_SECRET_CHARS = 43  # 256 bits, base64url


class SecretsError(Exception):
    """The secrets are missing or unsafe for this environment."""


@dataclass(frozen=True)
class Secrets:
    jwt_secret: str
    signing_passphrase: str


def load_or_create_secrets(path: Path, *, production: bool = False) -> Secrets:
    stored: dict[str, str] = {}
    if path.exists():
        stored = json.loads(path.read_text(encoding="utf-8"))
    values = {
        "jwt_secret": os.environ.get("EBR_JWT_SECRET") or stored.get("jwt_secret"),
        "signing_passphrase": os.environ.get("EBR_SIGNING_PASSPHRASE")
        or stored.get("signing_passphrase"),
    }
    if production:
        for name, value in values.items():
            if value is None or value in KNOWN_DEFAULTS:
                raise SecretsError(
                    f"EBR_{name.upper()} is not set or is a published default; "
                    "production never generates secrets: set it from your secret store."
                )
        if len(values["jwt_secret"] or "") < MIN_JWT_SECRET_CHARS:
            raise SecretsError(
                f"EBR_JWT_SECRET is shorter than {MIN_JWT_SECRET_CHARS} characters (256 bits)."
            )
        return Secrets(**values)  # type: ignore[arg-type]
    if any(v is None for v in values.values()):
        values = {k: v or secrets.token_urlsafe(32) for k, v in values.items()}
        _write_private(path, {**stored, **values})
    return Secrets(**values)  # type: ignore[arg-type]


def _write_private(path: Path, data: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
    os.replace(tmp, path)
