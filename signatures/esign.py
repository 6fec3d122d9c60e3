"""What an e-signature binds: the content of each signed action, hashed canonically.

The same functions build the content when a signature is made and when it is
checked later, so a stored value changed after signing no longer matches its hash.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from signatures.canonical import content_hash
from workflows.messages import (
    ReleaseRecordInput,
    SignatureIntent,
    StateChangeRecordInput,
    StepRecordInput,
    VerificationRecordInput,
)


def _manifestation(sig: SignatureIntent) -> dict[str, Any]:
    return {
        "user_id": sig.signer.user_id,
        "username": sig.signer.username,
        "full_name": sig.signer.full_name,
        "meaning": sig.meaning,
        "signed_at": sig.signed_at,
    }


def step_content(step: StepRecordInput) -> dict[str, Any]:
    content = {
        "kind": "step",
        "batch_id": step.batch_id,
        "step_id": step.step_id,
        "result": step.result,
        "values": dict(step.values),
        "reading": asdict(step.reading) if step.reading else None,
        "signature": _manifestation(step.signature),
    }
    if step.reason:
        content["correction_reason"] = step.reason
    return content


def verification_content(verification: VerificationRecordInput) -> dict[str, Any]:
    """The verifier attests to the performed record, identified by its signed hash."""
    return {
        "kind": "verification",
        "batch_id": verification.batch_id,
        "step_id": verification.step_id,
        "step_sha256": verification.step_sha256,
        "signature": _manifestation(verification.signature),
    }


def release_content(release: ReleaseRecordInput, step_hashes: list[str]) -> dict[str, Any]:
    """QA's decision binds every step signature hash, i.e. the whole executed record."""
    return {
        "kind": "release",
        "batch_id": release.batch_id,
        "decision": release.decision,
        "reason": release.reason,
        "steps": step_hashes,
        "signature": _manifestation(release.signature),
    }


def state_change_content(change: StateChangeRecordInput) -> dict[str, Any]:
    return {
        "kind": "state_change",
        "batch_id": change.batch_id,
        "from": change.from_state,
        "to": change.to_state,
        "reason": change.reason,
        "signature": _manifestation(change.signature),
    }


def recipe_content(recipe_id: str, version: str, sha256: str, sig: SignatureIntent) -> dict:
    return {
        "kind": "recipe",
        "recipe_id": recipe_id,
        "version": version,
        "sha256": sha256,
        "signature": _manifestation(sig),
    }


def sign_hash(content: dict[str, Any]) -> str:
    return content_hash(content)
