"""Names shared by the renderer, the signer and the verifier of the eBMR PDF.

Kept apart so that verification does not import WeasyPrint.
"""

from __future__ import annotations

RECORD_FORMAT = "ebr.batch-record/1"
RECORD_ATTACHMENT = "record.json"
RECIPE_ATTACHMENT = "recipe.yaml"
# The system's certification signature (named before QA's approval existed; kept so that
# records published earlier still verify).
SIGNATURE_FIELD = "ebr-release"
# QA's disposition (release or rejection) as an approval signature naming the QA signer.
APPROVAL_FIELD = "ebr-qa-approval"
