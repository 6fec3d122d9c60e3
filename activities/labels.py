"""The LABEL phase: the batch's label text, written as a file the site's print service
picks up (one file per phase instance under `<EBR_VAR_DIR>/labels/<batch>/`).

The write is atomic (a temporary file renamed into place) and idempotent: a retried
activity finds its own file with the same text and reports it as replayed; a different
text under the same phase instance is refused, because a printed label must never change
silently.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from urllib.parse import quote

from temporalio import activity
from temporalio.exceptions import ApplicationError

from workflows.messages import LabelInput, LabelPrinted


class LabelActivities:
    def __init__(self, labels_dir: Path) -> None:
        self.labels_dir = Path(labels_dir)

    def path_for(self, batch_id: str, step_id: str) -> Path:
        # Step ids hold '/' and loop repeats '#': quoted, each instance is one flat file name.
        return self.labels_dir / _flat(batch_id) / f"{_flat(step_id)}.txt"

    @activity.defn(name="print_label")
    def print_label(self, inp: LabelInput) -> LabelPrinted:
        data = inp.content.encode("utf-8")
        digest = hashlib.sha256(data).hexdigest()
        path = self.path_for(inp.batch_id, inp.step_id)
        if path.exists():
            if hashlib.sha256(path.read_bytes()).hexdigest() == digest:
                return LabelPrinted(str(path), digest, replayed=True)
            raise ApplicationError(
                f"A different label for {inp.batch_id} {inp.step_id} already exists at {path}: "
                "a printed label is never replaced; QA must investigate before it is removed.",
                type="LabelConflict", non_retryable=True,
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".label-", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        except OSError as exc:
            # Retryable: a full disk or a share that is briefly away can come back.
            raise ApplicationError(
                f"Could not write the label file {path}: {exc.strerror or exc}. Check the "
                "disk and the permissions of the labels directory.",
                type="LabelWriteFailed",
            ) from exc
        return LabelPrinted(str(path), digest)


def _flat(name: str) -> str:
    """One file name component: '/' quoted, and '.' or '..' (which quote() keeps, and which
    would name this or the parent directory) quoted too."""
    quoted = quote(name, safe="")
    return quoted.replace(".", "%2E") if quoted in (".", "..") else quoted
