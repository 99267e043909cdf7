"""Safe, once-only extraction of ``.zip`` / ``.tar`` / ``.tar.gz`` datasets into the cache.

Every entry is checked before anything is written: an absolute path, a ``..`` that climbs out,
or a link pointing outside the target refuses the whole archive. Extraction goes to a temporary
folder that is renamed into place, so an interrupted extraction is never mistaken for a
finished one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from transferlab import paths
from transferlab.errors import DataError

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _cache_key(archive: Path) -> str:
    stat = archive.stat()
    ident = f"{archive.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


def _stem(archive: Path) -> str:
    name = archive.name
    for suffix in sorted(ARCHIVE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _escapes(name: str) -> bool:
    """True when an entry name, joined to the target folder, would land outside it."""
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or (pure.parts and pure.parts[0].endswith(":")):
        return True
    depth = 0
    for part in pure.parts:
        depth += -1 if part == ".." else (0 if part in ("", ".") else 1)
        if depth < 0:
            return True
    return False


def _refuse(archive: Path, entry: str, why: str) -> DataError:
    return DataError(
        f"archive {archive} has an unsafe entry '{entry}' ({why}); nothing was extracted",
        "extract it yourself after checking its contents, and pass the folder",
    )


def _check_zip(archive: Path, handle: zipfile.ZipFile) -> None:
    for info in handle.infolist():
        if _escapes(info.filename):
            raise _refuse(archive, info.filename, "it would land outside the target folder")


def _check_tar(archive: Path, handle: tarfile.TarFile) -> None:
    for member in handle.getmembers():
        if _escapes(member.name):
            raise _refuse(archive, member.name, "it would land outside the target folder")
        if member.issym() or member.islnk():
            base = str(PurePosixPath(member.name).parent) if member.issym() else ""
            target = str(PurePosixPath(base) / member.linkname) if base else member.linkname
            if _escapes(target):
                raise _refuse(archive, member.name, f"a link to '{member.linkname}' outside the target folder")
        elif not (member.isfile() or member.isdir()):
            raise _refuse(archive, member.name, "a device, fifo or other special file")


def _extract_into(archive: Path, target: Path) -> None:
    name = archive.name.lower()
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(archive) as handle:
                _check_zip(archive, handle)
                handle.extractall(target)
        else:
            with tarfile.open(archive) as handle:
                _check_tar(archive, handle)
                # The 'data' filter (Python >= 3.11.4) is a second line of defence.
                kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                handle.extractall(target, **kwargs)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(
            f"cannot extract {archive}: {exc}", "check that the archive is complete and not corrupt"
        ) from None


def extract(archive: str | Path) -> Path:
    """Extract ``archive`` into the cache once and return the folder; later calls reuse it."""
    archive = Path(archive)
    final = paths.archives_dir() / f"{_stem(archive)}-{_cache_key(archive)}"
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=final.parent))
    try:
        _extract_into(archive, staging)
        os.replace(staging, final)
    except OSError:
        if not final.is_dir():  # a concurrent process may have won the rename; that is fine
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final
