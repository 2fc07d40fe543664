"""Real data that works offline: scikit-learn's bundled digits and MNIST IDX files from any folder.

Pixels stay integers (0..16 for digits, 0..255 for MNIST): the input encoding of docs/arithmetic.md
turns them into spike trains without any floating point.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mintaccel.core.errors import UserError

#: Where the MNIST test split lies beside a checkout of this project (see its README).
SHARED_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist-test"
DEFAULT_SEED = 0
TEST_FRACTION = 0.2


@dataclass(frozen=True)
class Split:
    name: str
    levels: int
    """Pixels are integers 0..levels."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    description: str
    """How the split was made, for reports."""
    shape: tuple[int, int, int] | None = None
    """(channels, rows, columns) of one image, pixels flattened in that order; None for plain vectors."""

    @property
    def n_inputs(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def _stratified_split(x, y, seed: int, test_fraction: float):
    from sklearn.model_selection import train_test_split
    return train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)


def digits(seed: int = DEFAULT_SEED, test_fraction: float = TEST_FRACTION) -> Split:
    """scikit-learn's 1,797 8x8 digits, stratified split with a fixed seed (1437 train / 360 test)."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = d.data.astype(np.uint8)
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = _stratified_split(x, y, seed, test_fraction)
    return Split("digits", 16, xtr, ytr, xte, yte,
                 f"sklearn digits, stratified {len(xtr)} train / {len(xte)} test, seed {seed}", (1, 8, 8))


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (plain or .gz) of unsigned bytes: the format of the MNIST distribution."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise UserError(f"{path}: cannot read IDX file ({e})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise UserError(f"{path}: not an IDX file (bad magic number)")
    if data[2] != 0x08:
        raise UserError(f"{path}: IDX element type 0x{data[2]:02x} is not unsigned byte")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise UserError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    count = int(np.prod(shape))
    if len(data) - header != count:
        raise UserError(f"{path}: IDX holds {len(data) - header} bytes of data, its header says {count}")
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def mnist(folder: str | Path | None = None, seed: int = DEFAULT_SEED, test_fraction: float = TEST_FRACTION) -> Split:
    """MNIST from standard IDX files in `folder`.

    With the training files present (`train-images-idx3-ubyte[.gz]`), the standard 60k/10k split is used.
    With only the test files (as in ../shared/data/mnist-test), those 10,000 images are split with a
    fixed seed (stratified, 8000 train / 2000 test by default).
    """
    folder = Path(folder) if folder is not None else SHARED_MNIST
    if not folder.is_dir():
        raise UserError(f"MNIST folder {folder} does not exist (point --data-dir at a folder of MNIST IDX files)")
    test_x, test_y = _find(folder, "t10k-images-idx3-ubyte"), _find(folder, "t10k-labels-idx1-ubyte")
    if test_x is None or test_y is None:
        raise UserError(f"{folder}: no t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]")
    (xte, shape), yte = _images(test_x), read_idx(test_y).astype(np.int64)
    if len(xte) != len(yte):
        raise UserError(f"{folder}: {len(xte)} test images but {len(yte)} labels")
    train_x, train_y = _find(folder, "train-images-idx3-ubyte"), _find(folder, "train-labels-idx1-ubyte")
    if train_x is not None and train_y is not None:
        (xtr, train_shape), ytr = _images(train_x), read_idx(train_y).astype(np.int64)
        if train_shape != shape:
            raise UserError(f"{folder}: training images are {train_shape[1]}x{train_shape[2]}, "
                            f"test images {shape[1]}x{shape[2]}")
        return Split("mnist", 255, xtr, ytr, xte, yte, f"MNIST standard split {len(xtr)} / {len(xte)}", shape)
    xtr, xte2, ytr, yte2 = _stratified_split(xte, yte, seed, test_fraction)
    return Split("mnist", 255, xtr, ytr, xte2, yte2,
                 f"MNIST t10k only, stratified {len(xtr)} train / {len(xte2)} test, seed {seed}", shape)


def _images(path: Path) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Flat images [n, rows*cols] and their (1, rows, cols) shape."""
    images = read_idx(path)
    if images.ndim != 3:
        raise UserError(f"{path}: expected a [n, rows, cols] image array, got {images.ndim} dimensions")
    return images.reshape(len(images), -1), (1, *images.shape[1:])


DATASETS = ("digits", "mnist")


def load(name: str, data_dir: str | Path | None = None, seed: int = DEFAULT_SEED) -> Split:
    if name == "digits":
        return digits(seed)
    if name == "mnist":
        return mnist(data_dir, seed)
    raise UserError(f"unknown dataset {name!r} (choose from {', '.join(DATASETS)})")
