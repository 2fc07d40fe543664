"""Tiny hand-checkable networks for the cycle simulator's tests."""

from __future__ import annotations

import numpy as np
import pytest

from mintaccel.core.hwconfig import HwConfig
from mintaccel.core.model import DenseLayer, IntModel, Leak, WeightFormat

#: docs/arithmetic.md section 6: 3 inputs, 3 neurons, uniform 3-bit weights, 3-bit membranes, 2-bit bias.
WORKED_W = [[3, -2, 1], [1, 2, -3], [-3, -3, -3]]
WORKED_X = [[1, 0, 1], [1, 1, 1], [0, 1, 0], [1, 0, 0]]


@pytest.fixture
def worked():
    """(model, spikes [1, 4, 3], cfg with n_pe = 2): the worked example of docs/arithmetic.md."""
    layer = DenseLayer(weight=np.array(WORKED_W), weight_format=WeightFormat("uniform", 3), membrane_bits=3,
                       threshold=3, reset="hard", leak=Leak("shift", 1), bias=np.array([0, 1, 0]), bias_bits=2)
    model = IntModel((layer,), 4)
    return model, np.array([WORKED_X], np.uint8), HwConfig.for_model(model, 2)
