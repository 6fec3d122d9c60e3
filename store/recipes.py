"""Master recipe versions: stored as the exact YAML that was validated and approved."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from recipes.compile import compile_plan
from recipes.plan import BatchPlan
from recipes.validate import load_recipe
from signatures.esign import recipe_content, sign_hash
from store import audit
from store.db import transaction
from store.models import RecipeVersion, Signature, utcnow
from workflows.messages import SignatureIntent


class RecipeStoreError(Exception):
    """A recipe action the store refuses; the message says what to do instead."""


class RecipeStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add_version(self, text: str, source: str, author: str) -> tuple[RecipeVersion, bool]:
        """Validate and store a recipe version; the same text again is a no-op."""
        recipe = load_recipe(text, source)
        plan = compile_plan(recipe)
        with transaction(self.engine) as session:
            existing = self._find(session, recipe.id, recipe.version)
            if existing is not None:
                if existing.sha256 != recipe.sha256:
                    raise RecipeStoreError(
                        f"Recipe {recipe.id} version {recipe.version} already exists with "
                        "different content; give the changed recipe a new version number."
                    )
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

    def approve(self, recipe_id: str, version: str, signature: SignatureIntent) -> RecipeVersion:
        key = f"recipe/{recipe_id}@{version}/approval"
        with transaction(self.engine) as session:
            row = self._find(session, recipe_id, version)
            if row is None:
                raise RecipeStoreError(f"Recipe {recipe_id} version {version} does not exist.")
            if row.status == "approved":
                return row
            if signature.signer.username == row.created_by:
                raise RecipeStoreError(
                    "The author of a recipe version cannot approve it; ask another approver."
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
            row.status = "approved"
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
                detail={"sha256": row.sha256, "signature_sha256": digest},
            )
            return row

    def get(self, recipe_id: str, version: str) -> RecipeVersion | None:
        with Session(self.engine) as session:
            return self._find(session, recipe_id, version)

    def list(self) -> list[RecipeVersion]:
        with Session(self.engine) as session:
            query = select(RecipeVersion).order_by(
                col(RecipeVersion.recipe_id), col(RecipeVersion.id)
            )
            return list(session.exec(query))

    def plan_for(self, recipe_id: str, version: str, batch_size: Decimal | None) -> BatchPlan:
        """Compile an approved version for a batch; drafts never run."""
        row = self.get(recipe_id, version)
        if row is None:
            raise RecipeStoreError(f"Recipe {recipe_id} version {version} does not exist.")
        if row.status != "approved":
            raise RecipeStoreError(
                f"Recipe {recipe_id} version {version} is {row.status}; an approver must "
                "sign its approval before batches can run it."
            )
        recipe = load_recipe(row.source_text, f"{recipe_id}@{version}")
        return compile_plan(recipe, batch_size)

    @staticmethod
    def _find(session: Session, recipe_id: str, version: str) -> RecipeVersion | None:
        query = select(RecipeVersion).where(
            RecipeVersion.recipe_id == recipe_id, RecipeVersion.version == version
        )
        return session.exec(query).first()
