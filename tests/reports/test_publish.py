"""write_atomically / sha256_hex: the final path only ever holds a complete file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from reports.errors import PublishError
from reports.publish import sha256_hex, write_atomically


def _leftovers(directory: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


def test_sha256_hex_is_lowercase_hex_of_the_bytes() -> None:
    assert sha256_hex(b"abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


def test_creates_the_file_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "B-1.pdf"
    write_atomically(target, b"%PDF-1.7 first")
    assert target.read_bytes() == b"%PDF-1.7 first"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert _leftovers(tmp_path, {"B-1.pdf"}) == []


def test_replaces_the_target_and_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "B-1.pdf"
    target.write_bytes(b"old content that is longer than the new one")
    os.chmod(target, 0o640)
    inode_before = target.stat().st_ino

    write_atomically(target, b"new")

    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    # A new inode proves a rename, not an in-place rewrite that a reader could catch halfway.
    assert target.stat().st_ino != inode_before
    assert _leftovers(tmp_path, {"B-1.pdf"}) == []


def test_failure_keeps_the_old_file_and_removes_the_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "B-1.pdf"
    target.write_bytes(b"old")

    def refuse(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(PublishError, match="No space left on device"):
        write_atomically(target, b"new")

    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path, {"B-1.pdf"}) == []


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PublishError, match="does not exist"):
        write_atomically(tmp_path / "nope" / "B-1.pdf", b"x")
