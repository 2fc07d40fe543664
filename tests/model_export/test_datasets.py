import gzip

import numpy as np
import pytest

from mintaccel.core.errors import UserError
from mintaccel.model_export import datasets


def test_digits_split_is_fixed():
    a, b = datasets.digits(), datasets.digits()
    assert (len(a.x_train), len(a.x_test)) == (1437, 360)
    assert np.array_equal(a.x_test, b.x_test) and np.array_equal(a.y_test, b.y_test)
    assert a.x_train.max() == 16 and a.n_inputs == 64 and a.n_classes == 10
    assert np.bincount(a.y_test).min() >= 35  # stratified


def _write_idx(path, array, gz=True):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


def test_idx_reader_and_folder_loader(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50, 28, 28))
    labels = np.arange(50) % 10
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels, gz=False)
    assert np.array_equal(datasets.read_idx(tmp_path / "t10k-images-idx3-ubyte.gz"), images)
    split = datasets.mnist(tmp_path)
    assert len(split.x_train) + len(split.x_test) == 50 and split.n_inputs == 784 and split.levels == 255
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", images[:20])
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels[:20])
    full = datasets.mnist(tmp_path)
    assert (len(full.x_train), len(full.x_test)) == (20, 50)


def test_idx_errors(tmp_path):
    (tmp_path / "x").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(UserError, match="bad magic"):
        datasets.read_idx(tmp_path / "x")
    _write_idx(tmp_path / "y", np.zeros((3, 2)), gz=False)
    (tmp_path / "y").write_bytes((tmp_path / "y").read_bytes()[:-1])
    with pytest.raises(UserError, match="header says 6"):
        datasets.read_idx(tmp_path / "y")
    with pytest.raises(UserError, match="does not exist"):
        datasets.mnist(tmp_path / "absent")
    with pytest.raises(UserError, match="no t10k-images"):
        datasets.mnist(tmp_path)


@pytest.mark.skipif(not datasets.SHARED_MNIST.is_dir(), reason=f"MNIST test split not found at {datasets.SHARED_MNIST}")
def test_shared_mnist_split():
    split = datasets.mnist()
    assert (len(split.x_train), len(split.x_test)) == (8000, 2000)
    assert split.x_train.shape[1] == 784
    assert np.bincount(np.concatenate([split.y_train, split.y_test])).tolist() == [
        980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_splits_carry_the_image_shape(tmp_path):
    assert datasets.digits().shape == (1, 8, 8)
    rng = np.random.default_rng(1)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", rng.integers(0, 256, (60, 5, 7)), gz=False)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.arange(60) % 10, gz=False)
    split = datasets.mnist(tmp_path)
    assert split.shape == (1, 5, 7) and split.n_inputs == 35
    _write_idx(tmp_path / "train-images-idx3-ubyte", rng.integers(0, 256, (10, 7, 5)), gz=False)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.arange(10) % 10, gz=False)
    with pytest.raises(UserError, match="training images are 7x5, test images 5x7"):
        datasets.mnist(tmp_path)
