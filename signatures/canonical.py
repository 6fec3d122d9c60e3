"""Canonical form of signed content: the bytes a signature's SHA-256 is taken over.

Sorted keys, no insignificant white space, UTF-8, no floats (values are strings), so
the same content always hashes the same on every machine and in every later check.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(content: Any) -> bytes:
    return json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def content_hash(content: Any) -> str:
    return hashlib.sha256(canonical_json(content)).hexdigest()
