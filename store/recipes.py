"""Master recipe versions: stored as the exact YAML that was validated and approved.

Lifecycle of a version (ISA-88 master recipe, 21 CFR Part 11 approval):

    draft --submit--> in_review --approve (e-signature)--> approved --make effective--> effective
      ^                  |                                                                 |
      +---return---------+                   a newer version made effective: superseded <--+
    any state but obsolete --obsolete--> obsolete

* Only `approved` and `effective` versions start batches (`plan_for`).
* The text of a version changes only while it is a draft, and only by its author
  (`add_version` with the same id and version); from `in_review` on it is frozen, so the
  approved bytes are the reviewed bytes (the approval signature binds their SHA-256).
* The approver must hold the approver role (checked by the caller's signature) and must
  not be an author of the version: neither the user who stored it nor the person named in
  the recipe's `header.author`.
* Every transition is one audit entry, written in the same transaction as the change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from recipes.compile import compile_plan
from recipes.diff import Change, diff_recipes
from recipes.model import Recipe
from recipes.plan import BatchPlan
from recipes.validate import load_recipe
from signatures.esign import recipe_content, sign_hash
from store import audit
from store.db import transaction
from store.models import AuditEvent, RecipeVersion, Signature, utcnow
from workflows.messages import SignatureIntent

DRAFT = "draft"
IN_REVIEW = "in_review"
APPROVED = "approved"
EFFECTIVE = "effective"
SUPERSEDED = "superseded"
OBSOLETE = "obsolete"
STATUSES = (DRAFT, IN_REVIEW, APPROVED, EFFECTIVE, SUPERSEDED, OBSOLETE)
RUNNABLE = (APPROVED, EFFECTIVE)

class RecipeStoreError(Exception):
    """A recipe action the store refuses; the message says what to do instead."""


class RecipeNotFound(RecipeStoreError):
    """No such recipe version."""


@dataclass(frozen=True)
class HistoryEntry:
    """One audited event in the life of a recipe version."""

    at: str
    actor: str
    action: str
    detail: dict[str, str]


def _subject(recipe_id: str, version: str) -> str:
    return f"recipe/{recipe_id}@{version}"


class RecipeStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add_version(self, text: str, source: str, author: str) -> tuple[RecipeVersion, bool]:
        """Validate and store a recipe version; the same text again is a no-op.

        Different text for an existing version replaces it only while that version is a
        draft and only for its author (returned as created=False); otherwise it is refused.
        """
        recipe = load_recipe(text, source)
        plan = compile_plan(recipe)
        with transaction(self.engine) as session:
            existing = self._find(session, recipe.id, recipe.version)
            if existing is not None:
                if existing.sha256 == recipe.sha256:
                    return existing, False
                self._revise(session, existing, recipe, author, source)
                return existing, False
            row = RecipeVersion(
                recipe_id=recipe.id,
                version=recipe.version,
                name=plan.product_name,
                product_code=plan.product_code,
                sha256=recipe.sha256,
                source_text=text,
                created_by=author,
            )
            session.add(row)
            audit.append(
                session,
                key=f"recipe/{recipe.id}@{recipe.version}/created",
                actor=author,
                action="recipe.created",
                subject=f"recipe/{recipe.id}@{recipe.version}",
                detail={"sha256": recipe.sha256, "source": source},
            )
            return row, True

    def _revise(
        self, session: Session, row: RecipeVersion, recipe: Recipe, author: str, source: str
    ) -> None:
        where = f"Recipe {recipe.id} version {recipe.version}"
        if row.status != DRAFT:
            raise RecipeStoreError(
                f"{where} is {row.status} and can no longer change; give the changed recipe a "
                "new version number."
            )
        if author != row.created_by:
            raise RecipeStoreError(
                f"{where} is a draft of {row.created_by}; only they can change it. Give your "
                "changed recipe a new version number."
            )
        previous = row.sha256
        row.sha256, row.source_text = recipe.sha256, recipe.source_text
        row.name, row.product_code = recipe.header.product.name, recipe.header.product.code
        session.add(row)
        audit.append(
            session,
            key=f"{_subject(recipe.id, recipe.version)}/revised/{recipe.sha256}",
            actor=author,
            action="recipe.revised",
            subject=_subject(recipe.id, recipe.version),
            detail={"sha256": recipe.sha256, "previous_sha256": previous, "source": source},
        )

    def submit_for_review(self, recipe_id: str, version: str, actor: str) -> RecipeVersion:
        """draft -> in_review: the text is frozen from now on."""
        return self._transition(recipe_id, version, actor, (DRAFT,), IN_REVIEW, "submitted")

    def return_to_draft(
        self, recipe_id: str, version: str, actor: str, reason: str
    ) -> RecipeVersion:
        """in_review -> draft, e.g. when the reviewer asks for changes."""
        return self._transition(
            recipe_id, version, actor, (IN_REVIEW,), DRAFT, "returned", {"reason": reason}
        )

    def make_effective(self, recipe_id: str, version: str, actor: str) -> RecipeVersion:
        """approved -> effective; the recipe's previously effective version is superseded."""
        with transaction(self.engine) as session:
            row = self._get(session, recipe_id, version)
            if row.status == EFFECTIVE:
                return row
            self._check_from(row, (APPROVED,), EFFECTIVE)
            current = session.exec(
                select(RecipeVersion).where(
                    RecipeVersion.recipe_id == recipe_id, RecipeVersion.status == EFFECTIVE
                )
            ).all()
            for old in current:
                self._move(session, old, SUPERSEDED, actor, "superseded", {"by": version})
            self._move(session, row, EFFECTIVE, actor, "effective")
            return row

    def obsolete(self, recipe_id: str, version: str, actor: str, reason: str) -> RecipeVersion:
        """Any state -> obsolete: the version never starts a batch again."""
        allowed = tuple(s for s in STATUSES if s != OBSOLETE)
        return self._transition(
            recipe_id, version, actor, allowed, OBSOLETE, "obsoleted", {"reason": reason}
        )

    def _transition(
        self,
        recipe_id: str,
        version: str,
        actor: str,
        allowed: tuple[str, ...],
        target: str,
        verb: str,
        detail: dict[str, str] | None = None,
    ) -> RecipeVersion:
        with transaction(self.engine) as session:
            row = self._get(session, recipe_id, version)
            if row.status == target:
                return row  # a repeated request changes nothing
            self._check_from(row, allowed, target)
            self._move(session, row, target, actor, verb, detail)
            return row

    @staticmethod
    def _check_from(row: RecipeVersion, allowed: tuple[str, ...], target: str) -> None:
        if row.status not in allowed:
            raise RecipeStoreError(
                f"Recipe {row.recipe_id} version {row.version} is {row.status}; it can become "
                f"{target} only from {' or '.join(allowed)}."
            )

    def _move(
        self,
        session: Session,
        row: RecipeVersion,
        target: str,
        actor: str,
        verb: str,
        detail: dict[str, str] | None = None,
    ) -> None:
        subject = _subject(row.recipe_id, row.version)
        # Transitions can repeat (draft -> in_review -> draft -> in_review): numbering the
        # key by this version's earlier entries keeps every transition's key unique.
        done = session.exec(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.subject == subject)
        ).one()
        previous = row.status
        row.status = target
        session.add(row)
        audit.append(
            session,
            key=f"{subject}/{verb}/{done}",
            actor=actor,
            action=f"recipe.{verb}",
            subject=subject,
            detail={"from": previous, "to": target, "sha256": row.sha256, **(detail or {})},
        )

    def approve(self, recipe_id: str, version: str, signature: SignatureIntent) -> RecipeVersion:
        """in_review -> approved, with the approver's e-signature over id, version, SHA-256."""
        key = f"recipe/{recipe_id}@{version}/approval"
        with transaction(self.engine) as session:
            row = self._get(session, recipe_id, version)
            if row.status in RUNNABLE:
                return row
            self._check_from(row, (IN_REVIEW,), APPROVED)
            signer = signature.signer
            if signer.username == row.created_by:
                raise RecipeStoreError(
                    "The author of a recipe version cannot approve it; ask another approver."
                )
            named = load_recipe(row.source_text, _subject(recipe_id, version)).header.author
            if named.strip().casefold() == signer.full_name.strip().casefold():
                raise RecipeStoreError(
                    f"{signer.full_name} is named as the author of recipe {recipe_id} version "
                    f"{version} (header.author) and cannot approve it; ask another approver."
                )
            digest = sign_hash(recipe_content(recipe_id, version, row.sha256, signature))
            sig = Signature(
                key=key,
                subject=f"recipe/{recipe_id}@{version}",
                user_id=signature.signer.user_id,
                username=signature.signer.username,
                full_name=signature.signer.full_name,
                meaning=signature.meaning,
                signed_at=signature.signed_at,
                content_sha256=digest,
            )
            session.add(sig)
            session.flush()
            previous = row.status
            row.status = APPROVED
            row.approved_at = utcnow()
            row.approved_by = signature.signer.username
            row.approval_signature_id = sig.id
            session.add(row)
            audit.append(
                session,
                key=f"{key}/audit",
                actor=signature.signer.username,
                action="recipe.approved",
                subject=f"recipe/{recipe_id}@{version}",
                detail={
                    "from": previous,
                    "to": APPROVED,
                    "sha256": row.sha256,
                    "signature_sha256": digest,
                },
            )
            return row

    def get(self, recipe_id: str, version: str) -> RecipeVersion | None:
        with Session(self.engine) as session:
            return self._find(session, recipe_id, version)

    def require(self, recipe_id: str, version: str) -> RecipeVersion:
        """The version, or `RecipeNotFound` saying which one is missing."""
        with Session(self.engine) as session:
            return self._get(session, recipe_id, version)

    def history(self, recipe_id: str, version: str) -> list[HistoryEntry]:
        """Every audited event of a version, oldest first."""
        subject = _subject(recipe_id, version)
        with Session(self.engine) as session:
            events = session.exec(
                select(AuditEvent).where(AuditEvent.subject == subject).order_by(col(AuditEvent.id))
            ).all()
            return [
                HistoryEntry(
                    at=e.at.isoformat(),
                    actor=e.actor,
                    action=e.action,
                    detail=json.loads(e.detail_json),
                )
                for e in events
            ]

    def recipe(self, recipe_id: str, version: str) -> Recipe:
        """The stored version, loaded (any status)."""
        row = self.require(recipe_id, version)
        return load_recipe(row.source_text, f"{recipe_id}@{version}")

    def diff(self, recipe_id: str, base: str, other: str) -> list[Change]:
        """Semantic changes from version `base` to version `other` of one recipe."""
        return diff_recipes(self.recipe(recipe_id, base), self.recipe(recipe_id, other))

    def compile(self, recipe_id: str, version: str, batch_size: Decimal | None) -> BatchPlan:
        """Preview the plan of any version for a batch size; `plan_for` is what batches use."""
        return compile_plan(self.recipe(recipe_id, version), batch_size)

    def list(self) -> list[RecipeVersion]:
        with Session(self.engine) as session:
            query = select(RecipeVersion).order_by(
                col(RecipeVersion.recipe_id), col(RecipeVersion.id)
            )
            return list(session.exec(query))

    def plan_for(self, recipe_id: str, version: str, batch_size: Decimal | None) -> BatchPlan:
        """Compile an approved or effective version for a batch; no other version runs."""
        row = self.require(recipe_id, version)
        if row.status not in RUNNABLE:
            if row.status in (SUPERSEDED, OBSOLETE):
                advice = "start the batch with the recipe's effective version."
            else:
                advice = "an approver must sign its approval before batches can run it."
            raise RecipeStoreError(
                f"Recipe {recipe_id} version {version} is {row.status}; {advice}"
            )
        recipe = load_recipe(row.source_text, f"{recipe_id}@{version}")
        return compile_plan(recipe, batch_size)

    @classmethod
    def _get(cls, session: Session, recipe_id: str, version: str) -> RecipeVersion:
        row = cls._find(session, recipe_id, version)
        if row is None:
            raise RecipeNotFound(
                f"Recipe {recipe_id} version {version} does not exist; list the versions with "
                "GET /api/v1/recipes."
            )
        return row

    @staticmethod
    def _find(session: Session, recipe_id: str, version: str) -> RecipeVersion | None:
        query = select(RecipeVersion).where(
            RecipeVersion.recipe_id == recipe_id, RecipeVersion.version == version
        )
        return session.exec(query).first()
