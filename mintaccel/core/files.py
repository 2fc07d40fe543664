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
import secrets
import shutil
import tempfile
from pathlib import Path

from mintaccel.core.errors import UserError

#: The file `atomic_folder` leaves in every folder it writes: only a folder holding it is replaced.
MARKER = ".mintaccel-output"

#: Temporaries of this process not yet renamed into place or removed. A Ctrl-C can land between the
#: creation of a temporary and the `try` that would remove it (or before a `with` body is entered), where
#: no `finally` sees it: `discard_temporaries` removes what is left, and each is registered before it exists.
_TEMPORARIES: set[Path] = set()


def _temporary(path: Path, suffix: str, folder: bool) -> Path:
    """Create a new, registered temporary sibling of `path` (a folder, or an empty file)."""
    while True:
        tmp = _parent(path) / f".{path.name}.{secrets.token_hex(4)}{suffix}"
        _TEMPORARIES.add(tmp)
        try:
            if folder:
                os.mkdir(tmp, 0o700)
            else:
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            return tmp
        except FileExistsError:
            _TEMPORARIES.discard(tmp)
        except OSError as e:
            _TEMPORARIES.discard(tmp)
            raise _write_error(path, e) from None


def _remove(tmp: Path) -> None:
    if tmp.is_dir():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _TEMPORARIES.discard(tmp)


def discard_temporaries() -> None:
    """Remove every temporary file or folder of this process that was not renamed into place (the CLI
    calls this on Ctrl-C). A renamed one no longer exists under its temporary name: nothing happens."""
    for tmp in list(_TEMPORARIES):
        _remove(tmp)


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
        probe = _temporary(folder / "mintaccel-probe", "", folder=False)
    except UserError:
        return False
    _remove(probe)
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
    """Refuse now an output folder that could not be made later: its parent is missing or read-only, the
    path is an existing file, or an existing folder that mintaccel did not write (it is not empty and
    holds no `MARKER` file). A folder of mintaccel's is fine: `atomic_folder` replaces it whole, so a
    foreign one (`.`, a source package, the user's data) must never be taken for one."""
    if path is None:
        return
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"cannot write {what} {path}: it is a file, not a folder")
    _check_parent(path, what)
    if path.is_dir():
        try:
            foreign = any(path.iterdir()) and not (path / MARKER).is_file()
        except OSError as e:
            raise UserError(f"cannot write {what} {path}: {e.strerror}") from None
        if foreign:
            raise UserError(f"cannot write {what} {path}: the folder exists and was not written by mintaccel "
                            f"(no {MARKER} in it); remove it or choose another folder")
        if not _can_create_in(path):
            raise UserError(f"cannot write {what} {path}: the folder is not writable")


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike):
    """Yield a temporary sibling folder of `path` to fill; on success it gets the `MARKER` file and replaces
    `path` (an old folder of that name is moved aside first and deleted only after the swap), on failure
    or Ctrl-C it is removed and `path` is left as it was. An existing `path` is replaced only if it is
    empty or holds `MARKER` (`check_output_folder`)."""
    path = Path(path)
    check_output_folder(path)
    tmp = _temporary(path, ".tmp", folder=True)
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    old = None
    try:
        (tmp / MARKER).write_text("written by mintaccel: the next run replaces this whole folder\n")
        os.chmod(tmp, 0o777 & ~_umask())
        if path.exists():
            # not registered in _TEMPORARIES: it holds the previous output until the new one is in place
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=_parent(path)))
            os.replace(path, old / path.name)
        os.replace(tmp, path)
        _TEMPORARIES.discard(tmp)
    except BaseException as e:
        _remove(tmp)
        if old is not None and not path.exists():  # the swap failed half-way: put the old output back
            os.replace(old / path.name, path)
        if isinstance(e, OSError):
            raise _write_error(path, e) from None
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb"):
    """Open a temporary sibling of `path` for writing; rename it over `path` only on success. An OSError
    while writing (disk full, a folder removed meanwhile) becomes a UserError naming `path`, not the
    temporary name."""
    path = Path(path)
    check_output_file(path)
    tmp = _temporary(path, ".tmp", folder=False)
    try:
        with open(tmp, mode) as f:
            yield f
        os.chmod(tmp, 0o666 & ~_umask())  # created 0600; give the file normal permissions
        os.replace(tmp, path)
        _TEMPORARIES.discard(tmp)
    except BaseException as e:
        _remove(tmp)
        if isinstance(e, OSError):
            raise _write_error(path, e) from None
        raise


def _write_error(path: Path, e: OSError) -> UserError:
    return UserError(f"cannot write {path}: {e.strerror or e}")


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
