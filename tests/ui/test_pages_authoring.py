"""Recipe authoring pages over HTTP: versions, upload with problems at their lines,
semantic diff, submit, approval signed with a password, and the refusals the store makes."""

from __future__ import annotations

import re
from pathlib import Path

from runtime.seed import demo_user
from tests.ui.rig import HOSTILE, Site

EXAMPLE = Path(__file__).parents[2] / "recipes" / "examples" / "vitamin-c-blend.yaml"


def version_of(text: str, version: str) -> str:
    return text.replace("version: 1.0.0 ", f"version: {version} ", 1)


class TestVersions:
    async def test_recipes_and_their_versions_are_listed_for_readers(self, site: Site):
        await site.login("approver")
        r = await site.http.get("/recipes")
        assert r.status_code == 200 and 'href="/recipes/VC-BLEND"' in r.text
        r = await site.http.get("/recipes/VC-BLEND")
        assert 'href="/recipes/VC-BLEND/versions/1.0.0"' in r.text and "in review" in r.text
        r = await site.http.get("/recipes/VC-BLEND/versions/1.0.0")
        assert "Sign approval" in r.text and "Return to draft" in r.text
        assert "Vitamin C 500 mg blend" in r.text and "recipe.submitted" in r.text

    async def test_an_operator_has_no_recipe_pages(self, site: Site):
        await site.login("operator")
        r = await site.http.get("/recipes")
        assert r.status_code == 403 and "needs one of the roles" in r.text


class TestUpload:
    async def test_validation_problems_are_shown_at_their_lines_and_nothing_is_stored(
        self, site: Site
    ):
        await site.login("author")
        bad = version_of(EXAMPLE.read_text(), "1.1.0").replace(
            "      quantity: 800\n", "      quantity: -800\n")
        r = await site.http.post("/recipes/new", data={"yaml_text": bad, "filename": "vc.yaml"})
        assert r.status_code == 422
        assert "1 problem: nothing was stored" in r.text
        assert '<a href="#line-43">line 43, column 7</a>' in r.text
        assert "formula.inputs[1].quantity" in r.text and "it must be greater than 0" in r.text
        line = r.text.split('id="line-43"')[1].split("</li>")[0]
        assert '<li id="line-43" tabindex="-1" class="has-problem">' in r.text
        assert "quantity: -800" in line and "must be greater than 0" in line
        # The text comes back in the editor, to be fixed.
        assert "quantity: -800" in r.text.split('id="yaml_text"')[1]
        assert site.svc.recipes.get("VC-BLEND", "1.1.0") is None

    async def test_a_file_upload_stores_a_draft_that_its_author_can_edit(self, site: Site):
        await site.login("author")
        text = version_of(EXAMPLE.read_text(), "1.2.0")
        r = await site.http.post("/recipes/new", files={
            "file": ("vc-1.2.0.yaml", text.encode(), "application/yaml")})
        assert r.status_code == 303
        assert r.headers["location"] == "/recipes/VC-BLEND/versions/1.2.0?saved=1"
        page = await site.http.get(r.headers["location"])
        assert "Saved. The recipe is valid" in page.text and "draft" in page.text
        assert "Validate and save the draft" in page.text and "Submit for review" in page.text
        # Editing the draft replaces it (same id and version, same author).
        edited = text.replace("quantity: 800\n", "quantity: 810\n", 1)
        r = await site.http.post("/recipes/new", data={"yaml_text": edited})
        assert r.status_code == 303
        assert "quantity: 810" in site.svc.recipes.get("VC-BLEND", "1.2.0").source_text

    async def test_a_frozen_version_is_refused_with_the_store_message(self, site: Site):
        await site.login("author")
        changed = EXAMPLE.read_text().replace("quantity: 800\n", "quantity: 810\n", 1)
        r = await site.http.post("/recipes/new", data={"yaml_text": changed})
        assert r.status_code == 409
        assert "is in_review and can no longer change" in r.text

    async def test_only_authors_may_upload(self, site: Site):
        await site.login("approver")
        r = await site.http.post("/recipes/new", data={"yaml_text": EXAMPLE.read_text()})
        assert r.status_code == 403


class TestDiff:
    async def test_the_semantic_diff_names_what_changed_between_two_versions(self, site: Site):
        await site.login("author")
        text = version_of(EXAMPLE.read_text(), "1.3.0").replace(
            "      quantity: 800\n", "      quantity: 820\n")
        # Comments and spacing do not count as changes.
        text = text.replace("# Master recipe:", "# Changed comment. Master recipe:")
        r = await site.http.post("/recipes/new", data={"yaml_text": text})
        assert r.status_code == 303
        r = await site.http.get("/recipes/VC-BLEND/diff?base=1.0.0&other=1.3.0")
        assert r.status_code == 200
        rows = r.text.split('id="diff"')[1]
        assert "RM-MCC" in rows and "800" in rows and "820" in rows
        assert "comment" not in rows.lower()
        same = await site.http.get("/recipes/VC-BLEND/diff?base=1.0.0&other=1.0.0")
        assert "No semantic difference" in same.text
        missing = await site.http.get("/recipes/VC-BLEND/diff?base=1.0.0&other=9.9.9")
        assert missing.status_code == 422 and "Refused:" in missing.text


class TestReviewAndApproval:
    async def test_the_author_submits_and_an_approver_signs_with_a_password(self, site: Site):
        await site.login("author")
        text = version_of(EXAMPLE.read_text(), "1.4.0")
        await site.http.post("/recipes/new", data={"yaml_text": text})
        r = await site.http.post("/recipes/VC-BLEND/versions/1.4.0/submit")
        assert r.status_code == 200 and "submitted for review" in r.text
        await site.login("approver")
        r = await site.http.post("/recipes/VC-BLEND/versions/1.4.0/approve",
                                 data={"username": "approver", "password": "wrong"})
        assert r.status_code == 409 and "User id or password is wrong" in r.text
        assert site.svc.recipes.get("VC-BLEND", "1.4.0").status == "in_review"
        r = await site.http.post("/recipes/VC-BLEND/versions/1.4.0/approve",
                                 data={"username": "approver",
                                       "password": demo_user("approver").password})
        assert r.status_code == 200
        assert "Version 1.4.0 approved, signed by" in r.text and "recipe.approved" in r.text
        assert site.svc.recipes.get("VC-BLEND", "1.4.0").approved_by == "approver"

    async def test_the_author_of_a_version_cannot_approve_it_and_is_told_so(self, site: Site):
        password = "Author-and-approver-2026!"
        site.add_user("abby", "Abby Both-Roles", ["author", "approver"], password)
        await site.login("abby", password)
        text = version_of(EXAMPLE.read_text(), "1.5.0")
        await site.http.post("/recipes/new", data={"yaml_text": text})
        await site.http.post("/recipes/VC-BLEND/versions/1.5.0/submit")
        r = await site.http.post("/recipes/VC-BLEND/versions/1.5.0/approve",
                                 data={"username": "abby", "password": password})
        assert r.status_code == 409
        assert "The author of a recipe version cannot approve it" in r.text
        assert site.svc.recipes.get("VC-BLEND", "1.5.0").status == "in_review"

    async def test_returning_to_draft_needs_a_reason(self, site: Site):
        await site.login("approver")
        r = await site.http.post("/recipes/VC-BLEND/versions/1.0.0/return", data={"reason": ""})
        assert r.status_code == 422 and "needs a reason" in r.text
        r = await site.http.post("/recipes/VC-BLEND/versions/1.0.0/return",
                                 data={"reason": HOSTILE})
        assert r.status_code == 200 and "returned to draft" in r.text
        assert "<script>alert" not in r.text and "&lt;script&gt;" in r.text


class TestEscaping:
    async def test_recipe_text_with_markup_is_shown_as_text(self, site: Site):
        await site.login("author")
        text = version_of(EXAMPLE.read_text(), "1.6.0").replace(
            "Charge both dispensed materials into the blender and close the lid.",
            "'" + HOSTILE.replace("'", "''") + "'")
        r = await site.http.post("/recipes/new", data={"yaml_text": text,
                                                       "filename": HOSTILE})
        assert r.status_code == 303, r.text
        page = await site.http.get("/recipes/VC-BLEND/versions/1.6.0")
        assert "<script>alert" not in page.text and "<img src=x" not in page.text
        assert re.search(r"&lt;script&gt;alert\(&#3[49];x&#3[49];\)", page.text)
