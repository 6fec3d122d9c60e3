"""Demo users (one per role) and the example recipes, seeded on first start.

Seeding is idempotent: users and recipe versions are keyed by name and version,
so every start can call it and only the first one writes anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from signatures.identity import IdentityPolicy, UserDirectory
from store.models import ALL_AREAS
from store.recipes import RecipeStore
from wms.seed import seed_inventory

EXAMPLES = Path(__file__).resolve().parent.parent / "recipes" / "examples"


@dataclass(frozen=True)
class DemoUser:
    username: str
    full_name: str
    role: str
    password: str


DEMO_USERS = (
    DemoUser("author", "Ada Author", "author", "author-demo-2026"),
    DemoUser("approver", "Alan Approver", "approver", "approver-demo-2026"),
    DemoUser("operator", "Olivia Operator", "operator", "operator-demo-2026"),
    # The second person of four-eyes steps (`verify: {role: operator}` in the examples).
    DemoUser("operator2", "Otto Operator", "operator", "operator2-demo-2026"),
    DemoUser("supervisor", "Sam Supervisor", "supervisor", "supervisor-demo-2026"),
    DemoUser("qa", "Quinn Quality", "qa", "qa-demo-2026"),
    # Releases a batch whose steps `qa` signed (whoever performed a step may not release).
    DemoUser("qa2", "Quincy Quality", "qa", "qa2-demo-2026"),
    DemoUser("auditor", "Avery Auditor", "auditor", "auditor-demo-2026"),
    DemoUser("admin", "Adrian Admin", "admin", "admin-demo-2026"),
)


def demo_user(role: str) -> DemoUser:
    """The first demo user of `role` (operator: `operator`, not `operator2`)."""
    return next(u for u in DEMO_USERS if u.role == role)


def second_demo_user(role: str, besides: str) -> DemoUser:
    """A demo user of `role` other than `besides` (a user id or full name, as a step's
    signer is shown): who verifies a four-eyes step."""
    return next(u for u in DEMO_USERS if u.role == role and besides not in (u.username,
                                                                              u.full_name))


# QA and auditors review every line; everyone else works in the demo area only.
ALL_AREA_ROLES = ("qa", "auditor")
DEMO_AREA = "main"


def seed_demo(engine: Engine, area: str = DEMO_AREA) -> None:
    seed_inventory(engine)
    users = UserDirectory(engine, IdentityPolicy(areas=(area,), default_area=area))
    for u in DEMO_USERS:
        areas = [ALL_AREAS] if u.role in ALL_AREA_ROLES else [area]
        users.ensure_user(u.username, u.full_name, u.password, [u.role], actor="seed",
                          areas=areas)
    recipes = RecipeStore(engine)
    for path in sorted(EXAMPLES.glob("*.yaml")):
        row, created = recipes.add_version(
            path.read_bytes().decode("utf-8"), path.name, author="author"
        )
        if created:
            # The author hands the example to review; an approver signs it (`ebr demo` does).
            recipes.submit_for_review(row.recipe_id, row.version, "author")
