"""The backup's table of contents: every file with its size and SHA-256.

A restore refuses a backup whose files do not match, so a truncated copy or a file changed
on the backup disk is caught before anything is restored.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from backup.errors import BackupError

FORMAT = "ebr.backup/1"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    created_at: str  # UTC, ISO 8601
    database: str  # "sqlite" or "postgresql"
    temporal: bool  # the embedded Temporal server's database is included
    files: dict[str, FileEntry] = field(default_factory=dict)
    format: str = FORMAT

    def write(self, folder: Path) -> None:
        body = asdict(self)
        (folder / MANIFEST).write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            files = {name: FileEntry(**entry) for name, entry in body.pop("files").items()}
            manifest = cls(files=files, **body)
        except FileNotFoundError as exc:
            raise BackupError(f"{folder} is not an ebr backup: it has no {MANIFEST}.") from exc
        except (ValueError, TypeError, KeyError) as exc:
            raise BackupError(f"{path} is damaged ({exc}); use another backup.") from exc
        if manifest.format != FORMAT:
            raise BackupError(
                f"{path} is in format {manifest.format!r}; this ebr restores {FORMAT!r}."
            )
        return manifest

    def check(self, folder: Path) -> None:
        """Every listed file present with its size and hash, and nothing unlisted."""
        found = {
            p.relative_to(folder).as_posix()
            for p in folder.rglob("*")
            if p.is_file() and p.name != MANIFEST
        }
        missing = sorted(set(self.files) - found)
        extra = sorted(found - set(self.files))
        altered = sorted(
            name for name, entry in self.files.items()
            if name in found and file_entry(folder / name) != entry
        )
        problems = []
        if missing:
            problems.append(f"missing: {', '.join(missing[:5])}")
        if extra:
            problems.append(f"not in the manifest: {', '.join(extra[:5])}")
        if altered:
            problems.append(f"changed since the backup: {', '.join(altered[:5])}")
        if problems:
            raise BackupError(
                f"The backup in {folder} does not match its manifest ({'; '.join(problems)}); "
                "it was damaged after it was taken. Use another backup."
            )


def file_entry(path: Path) -> FileEntry:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return FileEntry(sha256=digest.hexdigest(), size=path.stat().st_size)
