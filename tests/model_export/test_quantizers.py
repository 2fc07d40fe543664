"""Each quantizer against numbers computed by hand."""

import pytest
import torch

from mintaccel.model_export.quantizers import (
    PowerOfTwoQuantizer, SigmoidSumQuantizer, ThresholdCentredMembrane, UniformQuantizer, straight_through,
    temperature_schedule, threshold_centred_levels)
from mintaccel.core.model import WeightFormat


def test_straight_through_is_exact_forward_and_surrogate_backward():
    x = torch.tensor([0.1, 0.7, -2.3], requires_grad=True)
    y = straight_through(torch.round(x), 3 * x)
    assert y.tolist() == [0.0, 1.0, -2.0]
    y.sum().backward()
    assert x.grad.tolist() == [3.0, 3.0, 3.0]


def test_uniform_2_bit():
    w = torch.tensor([-0.9, -0.26, -0.24, 0.0, 0.24, 0.26, 5.0], requires_grad=True)
    q = UniformQuantizer(2)(w, torch.tensor(0.5))
    # w / s = [-1.8, -0.52, -0.48, 0, 0.48, 0.52, 10] -> round, clamp to -1..1
    assert q.tolist() == [-1, -1, 0, 0, 0, 1, 1]
    q.sum().backward()
    assert w.grad.tolist() == [0, 2, 2, 2, 2, 2, 0]  # 1/s inside the range, 0 where clamped


def test_uniform_4_bit_and_init_scale():
    q = UniformQuantizer(4)(torch.tensor([0.31, -0.74, 0.9]), torch.tensor(0.1))
    assert q.tolist() == [3, -7, 7]
    assert UniformQuantizer(4).init_scale(torch.tensor([1.0, -1.0])) == pytest.approx(2 / 7 ** 0.5)


def test_power_of_two_3_bit():
    s = torch.tensor(0.5)
    w = torch.tensor([0.2, 0.3, 0.5, 0.8, 1.1, 1.5, -2.4, 100.0])
    # w/s = 0.4 -> 0 (below 1/2); 0.6 -> 2^round(-0.74)=2^-1 -> clamped to 2^0=1; 1 -> 1;
    # 1.6 -> 2^round(0.68)=2; 2.2 -> 2^round(1.14)=2; 3 -> 2^round(1.58)=4; -4.8 -> -4; 200 -> 4 (e <= 2)
    assert PowerOfTwoQuantizer(3)(w, s).tolist() == [0, 1, 1, 2, 2, 4, -4, 4]


def test_sigmoid_sum_binary_soft_and_hard():
    quant = SigmoidSumQuantizer(WeightFormat("binary", 1), temperature=2.0)
    v = torch.tensor([-1.0, 0.0, 0.5])
    soft = quant.soft(v)
    # -1 + 2 * sigmoid(2 v)
    expected = [-1 + 2 / (1 + 2.718281828459045 ** 2), 0.0, -1 + 2 / (1 + 2.718281828459045 ** -1)]
    assert soft.tolist() == pytest.approx(expected, abs=1e-6)
    quant.eval()
    assert quant(torch.tensor([-0.3, 0.0, 0.2]), torch.tensor(1.0)).tolist() == [-1, 1, 1]


def test_sigmoid_sum_ternary_hard_step():
    quant = SigmoidSumQuantizer(WeightFormat("uniform", 2)).eval()
    # levels -1, 0, 1; midpoints -0.5 and 0.5; v >= midpoint steps up
    assert quant(torch.tensor([-0.6, -0.5, 0.49, 0.5, 3.0]), torch.tensor(1.0)).tolist() == [-1, 0, 0, 1, 1]


def test_temperature_grows_geometrically():
    assert temperature_schedule(0, 3) == pytest.approx(2.0)
    assert temperature_schedule(1, 3) == pytest.approx(20.0)
    assert temperature_schedule(2, 3) == pytest.approx(200.0)


def test_squat_threshold_centred_levels_by_hand():
    # 2 bits -> 4 levels; range -1 .. 1.2; 3 levels below the threshold with multiplier 0.1:
    # room = (1 + 0.1 + 0.01) / 2 = 0.555; -1, -1 + 1/0.555, ... ; one level above: 1 + 0.2
    levels = threshold_centred_levels(2, 1.0)
    assert levels == pytest.approx([-1.0, -1 + 1 / 0.555, -1 + 1.1 / 0.555, 1.2])
    m = ThresholdCentredMembrane(2)
    assert m(torch.tensor([0.95, -0.2, 2.0])).tolist() == pytest.approx([levels[2], levels[0], 1.2])
