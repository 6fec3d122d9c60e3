"""The pages in a real browser on the real stack: operator, QA, auditor, one batch.

Debian's Chromium driven by Playwright for Python (browser downloads are impossible here,
so Playwright launches /usr/bin/chromium). The stack is `ebr up`'s processes on free
ports with a temporary var dir; the simulated scale's control channel puts material on
the scale. A screenshot of each page lands in tests/ui/artifacts/ (gitignored).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devices.scale_sim import ScaleControl
from runtime.demo import Session, _devices, _grams
from runtime.seed import demo_user

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
# Without these, Chromium waits on update and sync servers it cannot reach on this network.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
TABLET = {"width": 1280, "height": 800}  # a 10-inch landscape tablet
BATCH = "UI-1"
# The demo WMS's labels (wms/seed.py): GTIN, lot and expiry as printed under the barcode.
LABELS = {"RM-ASC": "(01)07601234560013(10)ASC-2601(17)280630"}
WRONG_LABEL = "(01)07601234560020(10)MCC-2601"  # MCC at the ascorbic acid step
EXAMPLE = Path(__file__).parents[2] / "recipes" / "examples" / "vitamin-c-blend.yaml"
HOSTILE = "<script>window.__ebr_injected = 1</script> check the lid"


def _chromium() -> Path:
    """Debian's Chromium; installed here when missing and we may (root), else skip."""
    if not CHROMIUM.exists() and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], check=False,
                       capture_output=True, timeout=900)
    if not CHROMIUM.exists():
        pytest.skip(
            f"Chromium is not installed at {CHROMIUM} and this user cannot install it: "
            "run `apt-get install -y chromium` as root (`.ci/run` does)."
        )
    return CHROMIUM


@pytest.fixture
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip(
        "playwright.sync_api",
        reason="Playwright for Python is not installed: .venv/bin/pip install playwright",
    )
    executable = _chromium()
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def log_in(page: Any, base: str, role: str) -> None:
    user = demo_user(role)
    page.goto(f"{base}/login")
    page.get_by_label("User id").fill(user.username)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Log in").click()


def log_out(page: Any) -> None:
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/login$"))



def fill_user_id(scope, username: str) -> None:  # type: ignore[no-untyped-def]
    """The first signature of a session asks for the user id too; later ones do not."""
    field = scope.get_by_label(re.compile("Your user id"))
    if field.count():
        field.fill(username)


def test_operator_executes_on_tablet_qa_releases_auditor_verifies_pdf(stack, browser):
    from playwright.sync_api import expect

    settings, _ = stack
    base = settings.api_url
    approver = Session.login(base, "approver")
    approver.post("/api/v1/recipes/VC-BLEND/versions/1.0.0/approve",
                  {"username": approver.username, "password": approver.password})
    Session.login(base, "supervisor").post(
        "/api/v1/batches", {"batch_id": BATCH, "recipe_id": "VC-BLEND", "version": "1.0.0"})
    operator_api = Session.login(base, "operator")
    plan = {s["step_id"]: s for s in operator_api.get(f"/api/v1/batches/{BATCH}")["plan"]["steps"]}
    # A comment with markup, as anyone could type it: every page must show it as text.
    first_step = next(iter(plan))
    operator_api.post(f"/api/v1/batches/{BATCH}/steps/{first_step}/comments", {"text": HOSTILE})
    scale = ScaleControl(_devices(settings)["scale_control"])
    password = demo_user("operator").password

    page = browser.new_page(viewport=TABLET, accept_downloads=True)

    # --- Operator, on the tablet page ------------------------------------------------
    log_in(page, base, "operator")
    page.wait_for_url(re.compile(r"/operate$"))
    # Keyboard users see where they are: the skip link comes first, every focus is ringed.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    assert page.evaluate("getComputedStyle(document.activeElement).outlineWidth") == "4px"
    page.keyboard.press("Tab")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineWidth") == "4px"
    shot(page, "01-operator-batches")
    page.get_by_role("link", name=re.compile(BATCH)).click()
    expect(page.locator(".step-card")).to_have_count(1)
    shot(page, "02-operator-step")

    refused_once = False
    scanned = False
    for _ in range(len(plan)):
        card = page.locator(".step-card").first
        expect(card).to_be_visible()
        step_id = card.get_attribute("data-step-id")
        step = plan[step_id]
        if step["kind"] == "weigh":
            material = step["material"]
            label = LABELS.get(material["material_code"])
            if label and not scanned:
                # The handheld scanner types the label and Enter; the WMS checks it.
                card.get_by_label(re.compile("Scan the label of")).fill(label)
                card.get_by_label(re.compile("Scan the label of")).press("Enter")
                expect(page.locator(".msg-ok").first).to_contain_text(
                    f"Label verified: {material['material_code']} lot")
                shot(page, "03-operator-scan-verified")
                card = page.locator(".step-card").first
                field = card.get_by_label(re.compile("Scan the label of"))
                field.fill(WRONG_LABEL)
                field.press("Enter")
                expect(page.get_by_role("alert")).to_contain_text("Scan refused")
                shot(page, "03-operator-scan-refused")
                card = page.locator(".step-card").first
                scanned = True
            # The operator puts the material on the scale, then asks the page to read it.
            scale.set_weight(_grams(material["target"], material["unit"]))
            card.get_by_role("button", name="Read scale").click()
            reading = card.locator(".reading")
            expect(reading).to_contain_text(f"{material['target']} {material['unit']}")
            expect(reading).to_contain_text("within tolerance")
            shot(page, f"03-operator-reading-{material['material_code']}")
        if step["kind"] == "mix":
            # The simulated blender runs ~9 s; the page polls and offers signing when done.
            expect(card.get_by_text("The mixer is running")).to_be_visible(timeout=15_000)
            shot(page, "04-operator-mixing")
            expect(card.locator("summary", has_text="Sign and complete")).to_be_visible(
                timeout=60_000)
            card = page.locator(".step-card").first
        card.locator("summary", has_text="Sign and complete").click()
        if step["kind"] == "check":
            field = card.get_by_label(re.compile("Loss on drying"))
            field.fill("about two")
            expect(card.locator(".check")).to_contain_text("Enter a number")
            field.fill("1.0")
            expect(card.locator(".check")).to_contain_text("Within the limits 0.0 to 2.0")
            shot(page, "05-operator-check-entry")
        if not refused_once:
            # A wrong password is refused with the API's own message, and nothing is signed.
            fill_user_id(card, "operator")
            card.get_by_label(re.compile("Password of")).fill("not-my-password")
            card.get_by_role("button", name="Sign and complete").click()
            expect(page.get_by_role("alert")).to_contain_text("Refused")
            shot(page, "06-operator-refused")
            refused_once = True
            card = page.locator(".step-card").first
            expect(card).to_have_attribute("data-step-id", step_id)
        fill_user_id(card, "operator")
        card.get_by_label(re.compile("Password of")).fill(password)
        card.get_by_role("button", name="Sign and complete").click()
        expect(page.locator(".msg-ok").first).to_contain_text(
            f"Signed by Olivia Operator: {step['title']} recorded as pass")
        if page.locator(".step-card").count() == 0:
            break
    expect(page.get_by_text("All steps are done")).to_be_visible()
    shot(page, "07-operator-done")
    # When the session ends (idle timeout, logout elsewhere), the polling tablet goes to
    # the login page instead of silently showing a stale batch.
    page.context.clear_cookies()
    page.wait_for_url(re.compile(r"/login\?next=%2Foperate%2FUI-1$"), timeout=10_000)

    # --- QA: review by exception, then release with an e-signature ---------------------
    log_in(page, base, "qa")
    page.wait_for_url(re.compile(r"/review$"))
    shot(page, "08-qa-review-list")
    page.get_by_role("link", name=BATCH, exact=True).click()
    exceptions = page.locator(".exceptions")
    expect(exceptions).to_contain_text("Comment")
    expect(exceptions).to_contain_text(HOSTILE)  # shown as text, not run
    assert page.evaluate("window.__ebr_injected") is None
    shot(page, "09-qa-review-batch")
    fill_user_id(page.locator("form", has=page.get_by_role("button", name="Sign decision")),
                 "qa")
    page.get_by_label(re.compile("Password of")).fill(demo_user("qa").password)
    page.get_by_role("button", name="Sign decision").click()
    expect(page.locator(".msg-ok").first).to_contain_text(f"Released {BATCH}")
    expect(page.get_by_role("link", name=re.compile("Download the signed eBMR"))).to_be_visible(
        timeout=90_000)
    shot(page, "10-qa-released")
    log_out(page)

    # --- Auditor: find the batch, download the signed PDF, verify the download ---------
    log_in(page, base, "auditor")
    page.wait_for_url(re.compile(r"/audit-view$"))
    page.get_by_label("Batch, product, recipe or person").fill(BATCH)
    page.get_by_role("button", name="Search").click()
    with page.expect_download() as download_info:
        page.get_by_role("link", name=f"PDF of {BATCH}").click()
    pdf = ARTIFACTS / f"{BATCH}.pdf"
    ARTIFACTS.mkdir(exist_ok=True)
    download_info.value.save_as(pdf)
    assert pdf.read_bytes().startswith(b"%PDF")
    shot(page, "11-auditor-search")
    page.get_by_label("eBMR PDF file").set_input_files(str(pdf))
    page.get_by_role("button", name="Verify").click()
    result = page.locator("#verify-result")
    expect(result).to_contain_text(f"{BATCH}.pdf: verified")
    shot(page, "12-auditor-verified")
    page.get_by_role("link", name="Audit trail", exact=True).click()
    page.get_by_label("Batch", exact=True).fill(BATCH)
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#trail")).to_contain_text("batch.released")
    expect(page.locator("#export-csv")).to_be_visible()
    shot(page, "13-auditor-trail")
    log_out(page)

    # --- Recipe author: a version with a mistake, then fixed, submitted -----------------
    text = EXAMPLE.read_text().replace("version: 1.0.0 ", "version: 1.1.0 ", 1)
    log_in(page, base, "author")
    page.wait_for_url(re.compile(r"/recipes$"))
    shot(page, "14-author-recipes")
    page.get_by_role("link", name="Upload or write a new version").click()
    page.get_by_label("or write it here").fill(
        text.replace("      quantity: 800\n", "      quantity: -800\n"))
    page.get_by_role("button", name="Validate and save as draft").click()
    expect(page.locator("#problems")).to_contain_text("it must be greater than 0")
    page.locator("#problems a").first.click()
    expect(page.locator("li.has-problem").first).to_contain_text("quantity: -800")
    shot(page, "15-author-problems-at-lines")
    page.get_by_label("or write it here").fill(text.replace("quantity: 800\n", "quantity: 810\n"))
    page.get_by_role("button", name="Validate and save as draft").click()
    expect(page.get_by_role("status")).to_contain_text("Saved. The recipe is valid")
    page.get_by_role("button", name="Submit for review").click()
    expect(page.get_by_role("status")).to_contain_text("submitted for review")
    shot(page, "16-author-submitted")
    log_out(page)

    # --- Approver: what changed, then the signed approval ---------------------------------
    log_in(page, base, "approver")
    page.goto(f"{base}/recipes/VC-BLEND/versions/1.1.0")
    page.get_by_role("button", name="Show what changed").click()
    expect(page.locator("#diff")).to_contain_text("810")
    shot(page, "17-approver-diff")
    page.goto(f"{base}/recipes/VC-BLEND/versions/1.1.0")
    fill_user_id(page, demo_user("approver").username)
    page.get_by_label(re.compile("Password of")).fill(demo_user("approver").password)
    page.get_by_role("button", name="Sign approval").click()
    expect(page.get_by_role("status")).to_contain_text("Version 1.1.0 approved, signed by")
    shot(page, "18-approver-approved")
    log_out(page)

    # --- Administrator: users and the equipment register -----------------------------------
    log_in(page, base, "admin")
    page.wait_for_url(re.compile(r"/admin/users$"))
    page.get_by_label("User id").fill("nina")
    page.get_by_label(re.compile("Full name")).fill(HOSTILE)
    page.get_by_label("operator").check()
    page.get_by_label(re.compile("Initial password")).fill("Initial-pw-2026-abc!")
    page.get_by_label("Reason").fill("New starter")
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("status")).to_contain_text("Created nina")
    assert page.evaluate("window.__ebr_injected") is None
    shot(page, "19-admin-users")
    page.get_by_role("link", name="Equipment").click()
    expect(page.locator("main")).to_contain_text("SCALE-01")
    shot(page, "20-admin-equipment")
