"""Measure render + sign of synthetic N-step records: pages/s and peak RSS.

Run one size per process so that peak RSS is that size's own. Wall time depends on what else
the machine runs; CPU seconds (render + sign, this process) are the comparable figure:
    .venv/bin/python -m tests.reports.bench_render 50
    .venv/bin/python -m tests.reports.bench_render 500
Not collected by pytest (the name does not start with test_); numbers go in docs/reports.md.
"""

from __future__ import annotations

import copy
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from reports.pki import ensure_signing_identity
from reports.render import render_batch_record
from reports.sign import sign_pdf
from reports.verify import verify_pdf
from tests.reports.conftest import RECIPE_YAML, make_record


def synthetic_record(steps: int) -> dict[str, Any]:
    """`steps` steps cycled from the fixture's four kinds, each with its audit entry."""
    base = make_record()
    template = base["steps"]
    base["steps"] = []
    base["audit"] = base["audit"][:1]
    for index in range(steps):
        step = copy.deepcopy(template[index % len(template)])
        step["step_id"] = f"{step['step_id']}-{index:04d}"
        step["signature"]["signature_id"] = index + 10
        step["signature_verified"] = True
        base["steps"].append(step)
        base["audit"].append(
            {
                "at": step["signature"]["signed_at"],
                "actor": step["signature"]["username"],
                "action": "step.completed",
                "subject": f"B-2026-0001/{step['step_id']}",
                "detail": json.dumps({"result": step["result"]}),
            }
        )
    return base


def main(steps: int) -> None:
    record = synthetic_record(steps)
    with tempfile.TemporaryDirectory() as tmp:
        identity = ensure_signing_identity(Path(tmp), b"bench")
        cpu_started = time.process_time()
        started = time.perf_counter()
        rendered = render_batch_record(record, RECIPE_YAML)
        rendered_at = time.perf_counter()
        signed = sign_pdf(rendered.pdf, identity)
        signed_at = time.perf_counter()
        cpu_s = time.process_time() - cpu_started
        result = verify_pdf(signed, identity.root_cert, record)
        verified_at = time.perf_counter()
    assert result.ok and result.record_matches, result.problems
    render_s, sign_s = rendered_at - started, signed_at - rendered_at
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"steps={steps} pages={rendered.pages} size={len(signed) / 1024:.0f} KiB "
        f"render={render_s:.2f}s sign={sign_s:.3f}s verify={verified_at - signed_at:.3f}s "
        f"pages/s={rendered.pages / (render_s + sign_s):.1f} "
        f"cpu={cpu_s:.2f}s pages/cpu-s={rendered.pages / cpu_s:.1f} peak_rss={peak_mib:.0f} MiB"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
