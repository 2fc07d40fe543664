"""File I/O for user files: write whole or not at all (temporary name, then rename); check output paths
before the work starts; read JSON objects with one-line errors.

Every command checks its outputs with `check_output_file` / `check_output_folder` before any work, then
writes them with `atomic_open` / `atomic_folder`, so a bad path costs seconds, not minutes, and a failure
or Ctrl-C never leaves a half-written output behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from mintaccel.core.errors import UserError


def _parent(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def _check_parent(path: Path, what: str) -> None:
    folder = _parent(path)
    if not folder.is_dir():
        raise UserError(f"cannot write {what} {path}: folder {folder} does not exist")
    if not _can_create_in(folder):
        raise UserError(f"cannot write {what} {path}: folder {folder} is not writable")


def _can_create_in(folder: Path) -> bool:
    """Probe by creating a file: os.access answers yes for root even where a write would fail."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".mintaccel-probe.", dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(probe)
    return True


def check_output_file(path: str | os.PathLike | None, what: str = "output") -> None:
    """Refuse now, with one line, an output file that could not be written later: its folder is missing
    or read-only, or the path is an existing folder. None (no output asked for) passes."""
    if path is None:
        return
    path = Path(path)
    if str(path) == "" or path.is_dir():
        raise UserError(f"cannot write {what} {path}: it is a folder, give a file name")
    _check_parent(path, what)
    if path.exists() and not os.access(path, os.W_OK):
        raise UserError(f"cannot write {what} {path}: the file is read-only")


def check_output_folder(path: str | os.PathLike | None, what: str = "output folder") -> None:
    """Refuse now an output folder that could not be made later: its parent is missing or read-only,
    or the path is an existing file. An existing folder is fine (`atomic_folder` replaces it whole)."""
    if path is None:
        return
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"cannot write {what} {path}: it is a file, not a folder")
    _check_parent(path, what)
    if path.is_dir() and not _can_create_in(path):
        raise UserError(f"cannot write {what} {path}: the folder is not writable")


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike):
    """Yield a temporary sibling folder of `path` to fill; on success it replaces `path` (an old folder
    of that name is moved aside first and deleted only after the swap), on failure or Ctrl-C it is
    removed and `path` is left as it was."""
    path = Path(path)
    check_output_folder(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=_parent(path)))
    old = None
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=_parent(path)))
            os.replace(path, old / path.name)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not path.exists():  # the swap failed half-way: put the old output back
            os.replace(old / path.name, path)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb"):
    """Open a temporary sibling of `path` for writing; rename it over `path` only on success."""
    path = Path(path)
    check_output_file(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=_parent(path))
    try:
        with os.fdopen(fd, mode) as f:
            yield f
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_json_object(path: str | os.PathLike, where: str) -> dict:
    """A JSON object from `path`; any defect raises UserError `<where>: ...` in one line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{where}: no such file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UserError(f"{where}: not a UTF-8 text file") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{where}: not valid JSON (line {e.lineno}: {e.msg})") from None
    except OSError as e:
        raise UserError(f"{where}: cannot read ({e.strerror})") from None
    if not isinstance(data, dict):
        raise UserError(f"{where}: must be a JSON object")
    return data


def write_json(path: str | os.PathLike, data) -> None:
    """Write `data` as indented JSON, atomically."""
    with atomic_open(path, "w") as f:
        json.dump(data, f, indent=2, sort_keys=False)
        f.write("\n")
