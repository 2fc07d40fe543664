import numpy as np
import pytest

from mintaccel.core.errors import UserError
from mintaccel.sim.encoding import rate_encode


def test_rate_code_by_hand():
    x = rate_encode(np.array([[0, 8, 16, 5]]), 8, 16)
    assert x[0, :, 0].tolist() == [0] * 8
    assert x[0, :, 1].tolist() == [0, 1, 0, 1, 0, 1, 0, 1]
    assert x[0, :, 2].tolist() == [1] * 8
    # p = 5: floor(5 (t+1) / 16) - floor(5 t / 16) for t = 0..7
    assert x[0, :, 3].tolist() == [0, 0, 0, 1, 0, 0, 1, 0]
    assert x.dtype == np.uint8


def test_counts_are_floor_t_p_over_levels():
    p = np.arange(256)[None, :]
    x = rate_encode(p, 16, 255)
    assert x.sum(axis=1)[0].tolist() == [(16 * v) // 255 for v in range(256)]


def test_rejects_out_of_range_pixels():
    with pytest.raises(UserError, match="0..16"):
        rate_encode(np.array([[17]]), 4, 16)
    with pytest.raises(UserError, match="integers"):
        rate_encode(np.array([[0.5]]), 4, 16)
