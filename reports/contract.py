"""Names shared by the renderer, the signer and the verifier of the eBMR PDF.

Kept apart so that verification does not import WeasyPrint.
"""

from __future__ import annotations

RECORD_FORMAT = "ebr.batch-record/1"
RECORD_ATTACHMENT = "record.json"
RECIPE_ATTACHMENT = "recipe.yaml"
SIGNATURE_FIELD = "ebr-release"
