"""Row 5: publishing the eBMR (render + seal) against bare WeasyPrint + bare pyHanko.

Each measurement runs in a fresh child process (`python -m bench.render SIDE ...`), so
its peak RSS is its own and neither side inherits the other's warm caches:

- ebr:  `render_batch_record` (PDF/A-3b, record.json and recipe.yaml embedded, contract
        checks) + `seal_record` (the system's certification and QA's approval signature),
        exactly what the report activity publishes;
- bare: WeasyPrint `HTML(...).render().write_pdf()` on the same HTML with the same
        stylesheet and fonts (served by the same asset fetcher), then one plain pyHanko
        signature with the same key.

The bare side gets the same stylesheet on purpose: without it WeasyPrint lays out
unstyled HTML in the host's default fonts, a different (and differently sized) document.
Sizes: the 50-step record of a real batch from the bench stack, and a 500-step record
made by repeating its steps.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import io
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

from bench.harness import Comparison, interleave


def scaled_record(base: dict[str, Any], steps: int) -> dict[str, Any]:
    """`base` with its steps repeated (unique ids) until there are `steps`, each audited."""
    record = copy.deepcopy(base)
    source = base["steps"] or []
    if not source:
        raise ValueError("the base record has no steps to repeat")
    record["steps"] = []
    extra_audit = []
    for index in range(steps):
        step = copy.deepcopy(source[index % len(source)])
        if index >= len(source):
            step["step_id"] = f"{step['step_id']}#r{index}"
            extra_audit.append({
                "at": (step.get("signature") or {}).get("signed_at") or record["generated_at"],
                "actor": (step.get("signature") or {}).get("username") or "operator",
                "action": "step.completed",
                "subject": f"{record['batch']['batch_id']}/{step['step_id']}",
                "detail": json.dumps({"result": step["result"]}),
            })
        record["steps"].append(step)
    # Synthetic entries carry no chain fields, so the offline chain check skips them all.
    record["audit"] = [
        {k: v for k, v in e.items() if k not in ("key", "hashed_at")} for e in record["audit"]
    ] + extra_audit
    return record


def _ebr(record: dict[str, Any], recipe: str, pki: Path) -> tuple[int, bytes, float]:
    from reports.pki import ensure_signing_identity
    from reports.render import render_batch_record
    from reports.sign import Approval, seal_record

    identity = ensure_signing_identity(pki, b"bench-passphrase")
    started = time.perf_counter()
    rendered = render_batch_record(record, recipe)
    signed = seal_record(rendered.pdf, identity, approval=Approval.from_record(record))
    return rendered.pages, signed, time.perf_counter() - started


def _bare(record: dict[str, Any], recipe: str, pki: Path) -> tuple[int, bytes, float]:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko.sign.fields import SigFieldSpec
    from weasyprint import HTML

    from reports.pki import ensure_signing_identity
    from reports.render import PackageAssetFetcher, render_html

    identity = ensure_signing_identity(pki, b"bench-passphrase")
    html = render_html(record, recipe)
    signer = signers.SimpleSigner.load_pkcs12(str(identity.signer_p12),
                                              passphrase=identity.passphrase)
    started = time.perf_counter()
    document = HTML(string=html, url_fetcher=PackageAssetFetcher()).render()
    pdf = document.write_pdf()
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    out = signers.sign_pdf(writer, signers.PdfSignatureMetadata(field_name="bare"),
                           signer=signer, new_field_spec=SigFieldSpec("bare"))
    return len(document.pages), out.getvalue(), time.perf_counter() - started


def probe(side: str, record_path: Path, recipe_path: Path, pki: Path, steps: int) -> None:
    """Child process: one measurement, printed as one JSON line."""
    record = scaled_record(json.loads(record_path.read_text()), steps)
    recipe = recipe_path.read_text()
    cpu = time.process_time()
    pages, pdf, seconds = (_ebr if side == "ebr" else _bare)(record, recipe, pki)
    print(json.dumps({
        "pages": pages,
        "seconds": seconds,
        "cpu_s": time.process_time() - cpu,
        "bytes": len(pdf),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


async def _child(side: str, record: Path, recipe: Path, pki: Path, steps: int) -> dict:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.render", side, str(record), str(recipe), str(pki),
        str(steps), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"bench.render {side} {steps} failed: {err.decode()[-2000:]}")
    return json.loads(out.decode().strip().splitlines()[-1])


async def bench_render(sizes: list[tuple[int, int]], var_dir: Path,
                       recipe_text: str) -> list[Comparison]:
    """One comparison per (steps, rounds)."""
    record = var_dir / "bench-record.json"
    recipe = var_dir / "bench-recipe.yaml"
    recipe.write_text(recipe_text)
    pki = var_dir / "bench-pki"
    results = []
    for steps, rounds in sizes:
        pages: dict[str, int] = {}

        def round_for(side: str, steps: int = steps, pages: dict[str, int] = pages):  # type: ignore[no-untyped-def]
            async def run() -> dict[str, float]:
                got = await _child(side, record, recipe, pki, steps)
                pages[side] = got["pages"]
                return {"pages_per_s": got["pages"] / got["seconds"],
                        "pages_per_cpu_s": got["pages"] / got["cpu_s"],
                        "peak_rss_mib": got["peak_rss_mib"]}
            return run

        ebr, bare = await interleave(
            rounds, round_for("ebr"), round_for("bare"),
            {"pages_per_s": "pages/s", "pages_per_cpu_s": "pages/cpu-s",
             "peak_rss_mib": "MiB"})
        results.append(Comparison(
            "5", f"eBMR render + seal, {steps}-step batch ({pages.get('ebr', 0)} pages; "
            f"bare {pages.get('bare', 0)})", ebr, bare, "pages/s >= 1.0x, RSS <= 1.2x",
            "ebr: PDF/A-3b, two embedded files, contract checks, certification + QA "
            "approval signatures; bare: same HTML and stylesheet, plain PDF, one signature"))
    return results


def _compare(argv: list[str]) -> int:
    """`python -m bench.render compare RECORD.json [--size 50:5 --size 500:3] [--out DIR]`:
    row 5 alone, on a record you already have (e.g. one saved by a full `make bench`)."""
    from bench.recipes import instruction_recipe
    from bench.run import markdown

    parser = argparse.ArgumentParser(prog="python -m bench.render compare")
    parser.add_argument("record", type=Path)
    parser.add_argument("--size", action="append", default=[],
                        help="STEPS:ROUNDS, repeatable (default 50:5 and 500:3)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    sizes = [tuple(int(x) for x in s.split(":")) for s in args.size] or [(50, 5), (500, 3)]
    import platform
    import tempfile
    from datetime import UTC, datetime

    started = datetime.now(UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="ebr-bench-render-") as tmp:
        var = Path(tmp)
        (var / "bench-record.json").write_bytes(args.record.read_bytes())
        results = asyncio.run(bench_render(
            sizes, var, instruction_recipe(50, recipe_id="BENCH")))  # type: ignore[arg-type]
    meta = {"started": started, "mode": "row 5 only",
            "rounds": ", ".join(f"{r} at {n} steps" for n, r in sizes),
            "machine": f"{platform.machine()}, Python {platform.python_version()}"}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "render.json").write_text(json.dumps(
        {"meta": meta, "results": [c.as_dict() for c in results]}, indent=2))
    table = markdown(results, meta)
    (args.out / "render.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "compare":
        raise SystemExit(_compare(sys.argv[2:]))
    parser = argparse.ArgumentParser(description="one row-5 measurement (child process)")
    parser.add_argument("side", choices=("ebr", "bare"))
    parser.add_argument("record", type=Path)
    parser.add_argument("recipe", type=Path)
    parser.add_argument("pki", type=Path)
    parser.add_argument("steps", type=int)
    args = parser.parse_args()
    probe(args.side, args.record, args.recipe, args.pki, args.steps)
