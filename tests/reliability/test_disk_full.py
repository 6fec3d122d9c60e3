"""The disk fills up while the signed eBMR is written: the kernel refuses the write
(RLIMIT_FSIZE in a child process, so EFBIG comes from a real write(2)), and no truncated
file is ever at the final path; the old file, if any, stays whole."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from reports.render import render_batch_record
from tests.reports.conftest import RECIPE_YAML, make_record

CHILD = textwrap.dedent("""
    import resource, signal, sys
    from pathlib import Path
    from reports.errors import PublishError
    from reports.publish import write_atomically

    data = Path(sys.argv[1]).read_bytes()
    target = Path(sys.argv[2])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write(2), not a killed process
    limit = len(data) // 2
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        write_atomically(target, data)
    except PublishError as exc:
        print(exc)
        sys.exit(3)
    sys.exit(0)
""")


@pytest.fixture(scope="module")
def pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pdf") / "rendered.pdf"
    path.write_bytes(render_batch_record(make_record(), RECIPE_YAML).pdf)
    return path


def write_with_a_full_disk(pdf: Path, target: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CHILD, str(pdf), str(target)],
                          capture_output=True, text=True, timeout=120, check=False)


def test_a_new_record_is_not_published_at_all(pdf: Path, tmp_path: Path):
    reports = tmp_path / "reports"
    reports.mkdir()
    result = write_with_a_full_disk(pdf, reports / "B-1.pdf")
    assert result.returncode == 3, result.stderr
    assert "cannot write" in result.stdout and "large" in result.stdout.lower()
    assert list(reports.iterdir()) == []  # neither a truncated PDF nor a temporary file


def test_an_earlier_file_stays_whole(pdf: Path, tmp_path: Path):
    reports = tmp_path / "reports"
    reports.mkdir()
    earlier = b"%PDF-1.7 earlier record"
    (reports / "B-1.pdf").write_bytes(earlier)
    result = write_with_a_full_disk(pdf, reports / "B-1.pdf")
    assert result.returncode == 3, result.stderr
    assert [p.name for p in reports.iterdir()] == ["B-1.pdf"]
    assert (reports / "B-1.pdf").read_bytes() == earlier


def test_with_room_on_the_disk_the_same_write_succeeds(pdf: Path, tmp_path: Path):
    """The control: the child's limit, not the write itself, made the others fail."""
    reports = tmp_path / "reports"
    reports.mkdir()
    child = CHILD.replace("len(data) // 2", "len(data) * 4")
    result = subprocess.run([sys.executable, "-c", child, str(pdf), str(reports / "B-1.pdf")],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (reports / "B-1.pdf").read_bytes() == pdf.read_bytes()
