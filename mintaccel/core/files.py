"""File I/O for user files: write whole or not at all (temporary name, then rename); read JSON objects
with one-line errors."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from mintaccel.core.errors import UserError


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb"):
    """Open a temporary sibling of `path` for writing; rename it over `path` only on success."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UserError(f"cannot write {path}: folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
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
