"""Writing finished artefacts so that readers never see a half-written file."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

from reports.errors import PublishError

# Mode for newly created files when the target does not exist yet. mkstemp creates 0600;
# a published record is meant to be read by the other ebr processes of the same site.
_DEFAULT_MODE = 0o644


def sha256_hex(data: bytes) -> str:
    """Lower-case hex SHA-256 of `data` (the form stored beside every published PDF)."""
    return hashlib.sha256(data).hexdigest()


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that `path` is always either the old or the new content.

    Keeps the permission bits of an existing target; new files get 0644.
    """
    _write_atomically(path, data, mode=None)


def _write_atomically(path: Path, data: bytes, *, mode: int | None) -> None:
    """`write_atomically` with an explicit mode (the PKI writes its key material as 0600)."""
    path = Path(path)
    directory = path.parent
    if not directory.is_dir():
        raise PublishError(
            f"cannot write {path}: directory {directory} does not exist; create it first"
        )
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = _DEFAULT_MODE

    # Same directory as the target: os.replace is only atomic within one file system.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise PublishError(f"cannot write {path}: {exc.strerror or exc}") from exc
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    # Without this the rename itself may be lost on power failure, leaving the old file.
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass  # Some file systems refuse fsync on directories; the data file is already synced.
    finally:
        os.close(dir_fd)
