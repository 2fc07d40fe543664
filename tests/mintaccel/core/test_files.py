"""Whole-or-nothing outputs: one-line errors naming the user's path, the marker that makes a folder
replaceable, and temporaries that a Ctrl-C outside any `finally` would leave behind."""

from __future__ import annotations

import os

import pytest

from mintaccel.core.errors import UserError
from mintaccel.core.files import (
    MARKER, atomic_folder, atomic_open, check_output_file, check_output_folder, discard_temporaries)


def test_a_write_error_names_the_users_path_and_leaves_nothing(tmp_path):
    with pytest.raises(UserError, match=f"cannot write {tmp_path / 'x.bin'}: No space left on device") as e:
        with atomic_open(tmp_path / "x.bin") as f:
            f.write(b"half")
            raise OSError(28, "No space left on device")
    assert ".tmp" not in str(e.value) and list(tmp_path.iterdir()) == []


def test_a_folder_is_replaced_only_if_mintaccel_wrote_it(tmp_path):
    with atomic_folder(tmp_path / "out") as tmp:
        (tmp / "a.txt").write_text("1")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [MARKER, "a.txt"]
    with atomic_folder(tmp_path / "out") as tmp:
        (tmp / "b.txt").write_text("2")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [MARKER, "b.txt"]
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "data.csv").write_text("keep")
    with pytest.raises(UserError, match="was not written by mintaccel"):
        with atomic_folder(tmp_path / "theirs"):
            pass
    assert [p.name for p in (tmp_path / "theirs").iterdir()] == ["data.csv"]
    check_output_folder(tmp_path / "empty")  # missing, parent writable: fine
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "theirs"]


def test_temporaries_outside_a_finally_are_discarded(tmp_path):
    """Entered but never exited (as when Ctrl-C lands before a `with` body starts): the CLI's
    discard_temporaries removes the temporary; the output itself never appears."""
    opened = atomic_open(tmp_path / "x.bin")
    opened.__enter__().write(b"half")
    folder = atomic_folder(tmp_path / "out")
    folder.__enter__()
    assert len(list(tmp_path.iterdir())) == 2
    discard_temporaries()
    assert list(tmp_path.iterdir()) == []


def test_read_only_folder(tmp_path):
    (tmp_path / "ro").mkdir()
    os.chmod(tmp_path / "ro", 0o500)
    try:
        probe = tmp_path / "ro" / "probe"
        try:
            probe.write_text("")
            probe.unlink()
            pytest.skip("this user (root) can write into a read-only folder")
        except PermissionError:
            pass
        with pytest.raises(UserError, match="is not writable"):
            check_output_file(tmp_path / "ro" / "x.json", "--json")
    finally:
        os.chmod(tmp_path / "ro", 0o700)
