"""The life of a stored recipe version: draft -> in review -> approved -> effective ->
superseded / obsolete. Only approved or effective versions run, approved text never
changes, an author never approves their own version, and every transition is audited."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from store.audit import verify_chain
from store.models import AuditEvent
from store.recipes import RecipeNotFound, RecipeStore, RecipeStoreError
from workflows.messages import SignatureIntent, Signer

ID = "VC-BLEND"


def signature(username: str = "approver", full_name: str = "Alan Approver") -> SignatureIntent:
    return SignatureIntent(
        Signer(user_id=2, username=username, full_name=full_name, roles=["approver"]),
        meaning="approved",
        signed_at="2026-11-21T10:00:00.000+00:00",
    )


@pytest.fixture
def store(engine: Engine, example_text: str) -> RecipeStore:
    store = RecipeStore(engine)
    store.add_version(example_text, "vc.yaml", author="author")
    return store


def version_text(example_text: str, version: str, **changes: str) -> str:
    text = example_text.replace("version: 1.0.0", f"version: {version}")
    for old, new in changes.items():
        text = text.replace(old, new)
    return text


def actions(engine: Engine, version: str = "1.0.0") -> list[tuple[str, str, str]]:
    with Session(engine) as session:
        events = session.exec(
            select(AuditEvent)
            .where(AuditEvent.subject == f"recipe/{ID}@{version}")
            .order_by(col(AuditEvent.id))
        ).all()
        return [(e.action, e.actor, e.detail_json) for e in events]


def test_a_version_goes_from_draft_through_review_to_effective(store: RecipeStore) -> None:
    assert store.require(ID, "1.0.0").status == "draft"
    assert store.submit_for_review(ID, "1.0.0", "author").status == "in_review"
    assert store.approve(ID, "1.0.0", signature()).status == "approved"
    assert store.make_effective(ID, "1.0.0", "approver").status == "effective"
    assert [h.action for h in store.history(ID, "1.0.0")] == [
        "recipe.created",
        "recipe.submitted",
        "recipe.approved",
        "recipe.effective",
    ]
    assert store.history(ID, "1.0.0")[2].detail["from"] == "in_review"
    assert verify_chain(Session(store.engine)).ok


def test_only_approved_or_effective_versions_compile_for_a_batch(store: RecipeStore) -> None:
    for step in ("draft", "in_review"):
        with pytest.raises(RecipeStoreError, match=f"is {step}; an approver must sign"):
            store.plan_for(ID, "1.0.0", None)
        if step == "draft":
            store.submit_for_review(ID, "1.0.0", "author")
    store.approve(ID, "1.0.0", signature())
    assert store.plan_for(ID, "1.0.0", Decimal(3)).batch_size == "3"
    store.make_effective(ID, "1.0.0", "approver")
    assert store.plan_for(ID, "1.0.0", None).recipe_version == "1.0.0"
    store.obsolete(ID, "1.0.0", "approver", "replaced by a new process")
    with pytest.raises(RecipeStoreError, match="is obsolete; start the batch with the recipe's"):
        store.plan_for(ID, "1.0.0", None)


def test_making_a_version_effective_supersedes_the_previous_one(
    store: RecipeStore, example_text: str
) -> None:
    store.add_version(version_text(example_text, "1.1.0"), "vc-1.1.yaml", author="author")
    for version in ("1.0.0", "1.1.0"):
        store.submit_for_review(ID, version, "author")
        store.approve(ID, version, signature())
        store.make_effective(ID, version, "approver")
    assert store.require(ID, "1.0.0").status == "superseded"
    assert store.require(ID, "1.1.0").status == "effective"
    assert actions(store.engine)[-1][0] == "recipe.superseded"
    assert '"by": "1.1.0"' in actions(store.engine)[-1][2]


def test_the_author_cannot_approve_their_own_version(store: RecipeStore) -> None:
    store.submit_for_review(ID, "1.0.0", "author")
    with pytest.raises(RecipeStoreError, match="author of a recipe version cannot approve"):
        store.approve(ID, "1.0.0", signature(username="author"))


def test_the_person_named_as_author_in_the_recipe_cannot_approve_it(store: RecipeStore) -> None:
    store.submit_for_review(ID, "1.0.0", "author")
    with pytest.raises(RecipeStoreError, match=r"ada author is named as the author .*header"):
        store.approve(ID, "1.0.0", signature(username="ada2", full_name="ada author"))
    assert store.require(ID, "1.0.0").status == "in_review"


def test_a_draft_is_revised_in_place_by_its_author(store: RecipeStore, example_text: str) -> None:
    changed = example_text.replace("name: Vitamin C 500 blend", "name: Vitamin C 500 blend v2")
    row, created = store.add_version(changed, "vc.yaml", author="author")
    assert not created and row.source_text == changed
    assert actions(store.engine)[-1][0] == "recipe.revised"


def test_someone_else_cannot_revise_a_draft(store: RecipeStore, example_text: str) -> None:
    changed = example_text.replace("name: Vitamin C 500 blend", "name: Other")
    with pytest.raises(RecipeStoreError, match="is a draft of author; only they can change it"):
        store.add_version(changed, "vc.yaml", author="mallory")


def test_text_is_frozen_from_review_on(store: RecipeStore, example_text: str) -> None:
    store.submit_for_review(ID, "1.0.0", "author")
    store.approve(ID, "1.0.0", signature())
    changed = example_text.replace("name: Vitamin C 500 blend", "name: Changed")
    with pytest.raises(RecipeStoreError, match="is approved and can no longer change; give"):
        store.add_version(changed, "vc.yaml", author="author")
    assert store.require(ID, "1.0.0").source_text == example_text


def test_a_reviewer_can_return_a_version_to_draft_and_it_can_be_resubmitted(
    store: RecipeStore,
) -> None:
    store.submit_for_review(ID, "1.0.0", "author")
    store.return_to_draft(ID, "1.0.0", "approver", "tolerance too wide")
    store.submit_for_review(ID, "1.0.0", "author")
    assert [a for a, _, _ in actions(store.engine)] == [
        "recipe.created",
        "recipe.submitted",
        "recipe.returned",
        "recipe.submitted",
    ]


def test_repeating_a_transition_changes_nothing(store: RecipeStore) -> None:
    store.submit_for_review(ID, "1.0.0", "author")
    store.submit_for_review(ID, "1.0.0", "author")
    assert len(actions(store.engine)) == 2


def test_a_wrong_transition_says_which_states_allow_it(store: RecipeStore) -> None:
    with pytest.raises(RecipeStoreError, match="is draft; it can become effective only from"):
        store.make_effective(ID, "1.0.0", "approver")
    store.obsolete(ID, "1.0.0", "approver", "withdrawn")
    with pytest.raises(RecipeStoreError, match="is obsolete; it can become approved only from"):
        store.approve(ID, "1.0.0", signature())


def test_a_draft_cannot_be_approved_before_review(store: RecipeStore) -> None:
    with pytest.raises(RecipeStoreError, match="is draft; it can become approved only from"):
        store.approve(ID, "1.0.0", signature())


def test_an_unknown_version_is_named(store: RecipeStore) -> None:
    with pytest.raises(RecipeNotFound, match=r"Recipe VC-BLEND version 9\.9\.9 does not exist"):
        store.submit_for_review(ID, "9.9.9", "author")


def test_the_diff_between_two_stored_versions_is_semantic(
    store: RecipeStore, example_text: str
) -> None:
    text = version_text(example_text, "1.1.0", **{"value: 3, unit: min": "value: 4, unit: min"})
    store.add_version(text, "vc-1.1.yaml", author="author")
    assert [str(c) for c in store.diff(ID, "1.0.0", "1.1.0")] == [
        "changed header: version '1.0.0' -> '1.1.0'",
        "changed parameter mix_time: value 3 -> 4",
    ]
