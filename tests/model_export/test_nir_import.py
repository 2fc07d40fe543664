"""NIR import and export: the snnTorch -> NIR -> mintaccel round trip, the exact mappings, every refusal."""

from __future__ import annotations


from pathlib import Path

import nir
import numpy as np
import pytest
import torch

from mintaccel.core.errors import UserError
from mintaccel.model_export import datasets
from mintaccel.model_export.format import load_model
from mintaccel.model_export.nir_export import to_nir, write_nir
from mintaccel.model_export.nir_import import (
    Choice, ImportConfig, float_net, import_nir, layer_formats, leak_for, quantize, read_graph, simulate,
    spiking_threshold)
from mintaccel.sim.encoding import rate_encode
from mintaccel.core.model import DenseLayer, Encoding, IntModel, Leak, WeightFormat
from mintaccel.sim.reference import decode, run, run_batched

T = 8
BETA = 0.875  # 1 - 2^-3: maps exactly onto the decay leak k = 3
#: The integer model at 4-bit weights and membranes stays within this of the float snnTorch accuracy.
MARGIN_4_4 = 0.03
#: At 2/2 bits (ternary weights, membranes in -1..1) post-training quantization alone keeps this much.
FLOOR_2_2 = 0.75


# ---------------------------------------------------------------- a trained snnTorch network

def train_snntorch(reset: str = "zero", hidden: int = 64, epochs: int = 6, seed: int = 0):
    """A 64-hidden-10 snn.Leaky network trained on the rate-encoded digits (the spikes mintaccel runs).

    Per-neuron beta/threshold vectors: scalar ones make snnTorch's NIR export fail type inference.
    Returns the network, its test predictions (spike-count argmax) and its NIR graph.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # reproducible, and no thread contention on small batches
    try:
        return _train_snntorch(reset, hidden, epochs, seed)
    finally:
        torch.set_num_threads(threads)


def _train_snntorch(reset, hidden, epochs, seed):
    from mintaccel.model_export.snntorch_baseline import train_snntorch
    return train_snntorch(datasets.digits(), hidden, epochs, T, BETA, reset, seed)


@pytest.fixture(scope="module")
def digits():
    return datasets.digits()


@pytest.fixture(scope="module")
def snntorch_nir(tmp_path_factory, digits):
    """(path of the .nir file snnTorch exported, snnTorch's test predictions)."""
    _, pred, graph = train_snntorch()
    path = tmp_path_factory.mktemp("nir") / "snntorch.nir"
    nir.write(path, graph)
    return path, pred


def accuracy(pred, split):
    return float((pred == split.y_test).mean())


def test_float_simulation_reproduces_snntorch(snntorch_nir, digits):
    """Forward Euler at snnTorch's dt = 1e-4 is snnTorch's own update: the same prediction on every sample."""
    path, pred = snntorch_nir
    net = float_net(read_graph(path))
    assert [l.kind for l in net.layers] == ["LIF", "LIF"]
    assert all(l.beta == pytest.approx(BETA, abs=1e-6) for l in net.layers)
    fpred = decode(simulate(net, rate_encode(digits.x_test, T, digits.levels)))
    assert np.array_equal(fpred, pred)


def test_snntorch_round_trip_accuracy(snntorch_nir, digits):
    path, pred = snntorch_nir
    float_acc = accuracy(pred, digits)
    assert float_acc > 0.9
    for bits, ok in ((4, lambda a: a >= float_acc - MARGIN_4_4), (2, lambda a: a >= FLOOR_2_2)):
        cfg = ImportConfig(weights=(f"uniform:{bits}",), membrane=(bits,), timesteps=T, calibrate=True)
        result = import_nir(path, cfg, digits)
        model = result.model
        assert [l.leak for l in model.layers] == [Leak("decay", 3)] * 2  # beta 0.875 exactly
        assert all(l.bias is not None and l.reset == "hard" for l in model.layers)
        # the figure the report prints is the reference model's accuracy on the test split
        ipred = run(model, rate_encode(digits.x_test, T, digits.levels)).predictions
        assert result.figures["test_accuracy"] == accuracy(ipred, digits)
        assert result.figures["float_accuracy"] == float_acc
        assert ok(accuracy(ipred, digits)), (bits, accuracy(ipred, digits), float_acc)


def test_import_is_deterministic(snntorch_nir, digits):
    path, _ = snntorch_nir
    cfg = ImportConfig(weights=("pot:3",), membrane=(3,), calibrate=True, calibration_samples=500)
    a, b = import_nir(path, cfg, digits).model, import_nir(path, cfg, digits).model
    for la, lb in zip(a.layers, b.layers):
        assert np.array_equal(la.weight, lb.weight) and la.threshold == lb.threshold and la.scale == lb.scale


def test_finetune_starts_from_the_import_and_exports_a_verified_model(snntorch_nir, digits):
    path, _ = snntorch_nir
    cfg = ImportConfig(weights=("uniform:2",), membrane=(2,), calibrate=True, finetune_epochs=1)
    result = import_nir(path, cfg, digits)
    f = result.figures
    assert "test_accuracy_before_finetune" in f and f["test_accuracy"] > 0.5
    assert all(l.weight_format == WeightFormat("uniform", 2) and l.membrane_bits == 2 for l in result.model.layers)


def test_soft_reset_import_follows_snntorch_subtract(digits, tmp_path):
    """snnTorch's default subtract reset is exported as a reset to 0; --reset soft says what it was."""
    _, pred, graph = train_snntorch(reset="subtract", epochs=3)
    nir.write(tmp_path / "s.nir", graph)
    net = float_net(read_graph(tmp_path / "s.nir"))
    spikes = rate_encode(digits.x_test, T, digits.levels)
    assert np.array_equal(decode(simulate(net, spikes, "soft")), pred)
    result = import_nir(tmp_path / "s.nir", ImportConfig(reset="soft", calibrate=True), digits)
    assert all(l.reset == "soft" for l in result.model.layers)
    assert any("soft reset" in n for n in result.notes)
    assert result.figures["test_accuracy"] >= result.figures["float_accuracy"] - 0.05


# ---------------------------------------------------------------- exact mappings on small graphs

def lif(n, tau=8e-4, r=None, thr=1.0, **kw):
    r = tau / 1e-4 if r is None else r
    d = dict(tau=np.full(n, tau), r=np.full(n, r), v_leak=np.zeros(n), v_threshold=np.broadcast_to(thr, (n,)) * 1.0,
             v_reset=np.zeros(n))
    d.update(kw)
    return nir.LIF(**d)


def write(tmp_path, nodes: dict, edges=None, name="g.nir"):
    names = list(nodes)
    graph = nir.NIRGraph(nodes=nodes, edges=edges if edges is not None else list(zip(names, names[1:])),
                         type_check=False)
    nir.write(tmp_path / name, graph)
    return tmp_path / name


def dense(tmp_path, weight, neuron, bias=None, name="g.nir"):
    w = np.asarray(weight, np.float64)
    fc = nir.Linear(weight=w) if bias is None else nir.Affine(weight=w, bias=np.asarray(bias, np.float64))
    return write(tmp_path, {"input": nir.Input(np.array([w.shape[1]])), "fc": fc, "lif": neuron,
                            "output": nir.Output(np.array([w.shape[0]]))}, name=name)


def one_layer(path, weights="uniform:4", membrane=4, scale=0.25, reset="hard"):
    net = float_net(read_graph(path))
    formats = layer_formats(net, (weights,), (membrane,), None)
    model = quantize(net, formats, [Choice(scale, spiking_threshold(scale))], reset, 4, Encoding("rate", 16))
    return net, model


@pytest.mark.parametrize("beta, leak, exact", [
    (0.5, Leak("decay", 1), True), (0.75, Leak("decay", 2), True), (1 - 2**-7, Leak("decay", 7), True),
    (0.25, Leak("shift", 2), True), (0.0, Leak("shift", 15), False), (1.0, Leak("none"), True),
    (0.9, Leak("decay", 3), False), (0.95, Leak("decay", 4), False), (0.3, Leak("shift", 2), False)])
def test_leak_for(beta, leak, exact):
    got, realised = leak_for(beta)
    assert got == leak
    assert (realised == beta) == exact


@pytest.mark.parametrize("scale, theta", [(0.25, 5), (0.3, 4), (1 / 7, 8), (0.5, 3), (2.0, 1)])
def test_strict_threshold(scale, theta):
    """v > 1 on integers in units of s is H >= floor(1/s) + 1 (an exact tie stays below)."""
    assert spiking_threshold(scale) == theta


def test_weights_thresholds_and_gains_map_exactly(tmp_path):
    """Heterogeneous thresholds and input gains fold into the rows; the integers come out exact."""
    w = [[0.5, -0.25, 1.0], [1.0, 2.0, -4.0]]
    thr = np.array([1.0, 4.0])
    path = dense(tmp_path, w, lif(2, tau=4e-4, r=8.0, thr=thr), bias=[0.25, -1.0])  # gain dt*r/tau = 2
    net, model = one_layer(path, scale=0.25)
    layer = model.layers[0]
    assert net.layers[0].beta == pytest.approx(0.75)
    assert layer.leak == Leak("decay", 2)
    # row i: w * gain / thr_i / s
    assert layer.weight.tolist() == [[4, -2, 7], [2, 4, -7]]  # 8 saturates at 7 (4-bit)
    assert layer.bias.tolist() == [2, -2]
    assert layer.threshold == 5


def test_integer_model_equals_float_where_quantization_is_exact(tmp_path):
    """Weights on the grid, no leak to round, no clamp reached: the integer layer spikes as the float one."""
    rng = np.random.default_rng(0)
    w = rng.integers(-3, 4, size=(6, 10)) * 0.25
    path = dense(tmp_path, w, nir.IF(r=np.full(6, 1e4), v_threshold=np.full(6, 1.0)))
    net, model = one_layer(path, membrane=8, scale=0.25)
    x = rng.integers(0, 2, size=(50, 4, 10)).astype(np.uint8)
    counts = run(model, x).counts
    # the float membrane is 0.25 * H exactly; |H| <= 4 steps * 10 inputs * 3 < 127, the 8-bit clamp
    assert np.array_equal(counts, simulate(net, x).astype(np.int64))


def test_if_cubalif_and_li_readout(tmp_path):
    w = np.eye(3)
    p = write(tmp_path, {"fc": nir.Linear(weight=w), "if": nir.IF(r=np.full(3, 1e4), v_threshold=np.ones(3)),
                         "fc2": nir.Linear(weight=w), "li": nir.LI(tau=np.full(3, 2e-4), r=np.full(3, 2.0),
                                                                  v_leak=np.zeros(3))})
    net = float_net(read_graph(p))
    assert [l.kind for l in net.layers] == ["IF", "LI"] and net.layers[0].beta == 1.0
    result = import_nir(p, ImportConfig(levels=16))
    assert [str(l.leak) for l in result.model.layers] == ["none", "decay:1"]
    assert result.model.layers[1].reset == "soft" and any("LI readout" in n for n in result.notes)

    cuba = lambda tau_syn: nir.CubaLIF(tau_syn=np.full(3, tau_syn), tau_mem=np.full(3, 8e-4), r=np.full(3, 8.0),
                                       v_leak=np.zeros(3), v_threshold=np.ones(3), w_in=np.full(3, tau_syn / 1e-4))
    exact = float_net(read_graph(dense(tmp_path, w, cuba(1e-4), name="c0.nir")))
    plain = float_net(read_graph(dense(tmp_path, w, lif(3), name="l.nir")))
    assert exact.layers[0].alpha == 0 and np.allclose(exact.layers[0].weight, plain.layers[0].weight)
    filtered = float_net(read_graph(dense(tmp_path, w, cuba(2e-4), name="c1.nir")))
    assert filtered.layers[0].alpha == pytest.approx(0.5)
    assert np.allclose(filtered.layers[0].dc_weight(), 2 * np.eye(3))  # DC gain w_in = 2
    assert any("synaptic filter" in n for n in filtered.notes)


def test_missing_input_output_types_are_inferred(tmp_path):
    p = write(tmp_path, {"fc": nir.Linear(weight=np.ones((3, 4))), "lif": lif(3)})
    assert import_nir(p, ImportConfig(levels=16)).model.n_inputs == 4
    # the batch dimension snnTorch leaks into the Input type without ignore_dims=[0]
    p = write(tmp_path, {"input": nir.Input(np.array([1, 4])), "fc": nir.Linear(weight=np.ones((3, 4))), "lif": lif(3)},
              name="b.nir")
    assert import_nir(p, ImportConfig(levels=16)).model.n_inputs == 4


# ---------------------------------------------------------------- refusals

def refuse(path, match, **cfg):
    with pytest.raises(UserError, match=match) as e:
        import_nir(path, ImportConfig(**({"levels": 16} | cfg)))
    assert "\n" not in str(e.value)


def test_refuses_unknown_nodes(tmp_path):
    p = write(tmp_path, {"fc": nir.Linear(weight=np.zeros((4, 4))), "d": nir.Delay(delay=np.ones(4)), "lif": lif(4)},
              name="d.nir")
    refuse(p, "node 'd' is a Delay, which mintaccel cannot import")


@pytest.mark.parametrize("params, match", [
    ({"v_reset": np.full(3, 0.5)}, "node 'lif': v_reset is 0.5, not 0"),
    ({"v_leak": np.full(3, -0.1)}, "node 'lif': v_leak is -0.1, not 0"),
    ({"tau": np.array([8e-4, 8e-4, 4e-4]), "r": np.full(3, 8.0)}, "node 'lif': tau differs across the layer"),
    ({"tau": np.full(3, 5e-5), "r": np.full(3, 1.0)}, "shorter than dt"),
    ({"v_threshold": np.array([1.0, 0.0, 1.0])}, "node 'lif': v_threshold must be positive"),
])
def test_refuses_unsupported_neuron_parameters(tmp_path, params, match):
    refuse(dense(tmp_path, np.ones((3, 2)), lif(3, **params)), match)


def test_refuses_recurrence_and_non_chains(tmp_path):
    nodes = {"input": nir.Input(np.array([4])), "fc": nir.Linear(weight=np.ones((3, 4))), "lif": lif(3),
             "rec": nir.Linear(weight=np.eye(3))}
    edges = [("input", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif")]
    refuse(write(tmp_path, nodes, edges), "recurrent edge 'rec' -> 'lif'")
    sub = nir.NIRGraph(nodes={"i": nir.Input(np.array([3])), "l": lif(3), "o": nir.Output(np.array([3]))},
                       edges=[("i", "l"), ("l", "o")])
    nested = {"input": nir.Input(np.array([4])), "fc": nir.Linear(weight=np.ones((3, 4))), "rlif": sub}
    refuse(write(tmp_path, nested, name="n.nir"), "node 'rlif' is a nested NIRGraph")
    branch = {"input": nir.Input(np.array([4])), "fc": nir.Linear(weight=np.ones((3, 4))), "a": lif(3), "b": lif(3)}
    refuse(write(tmp_path, branch, [("input", "fc"), ("fc", "a"), ("fc", "b")], name="b.nir"), "node 'fc' feeds 2")


def test_refuses_malformed_layer_sequences(tmp_path):
    refuse(write(tmp_path, {"fc": nir.Linear(weight=np.ones((3, 4))), "fc2": nir.Linear(weight=np.ones((3, 3))),
                            "lif": lif(3)}), "two weight nodes in a row")
    refuse(write(tmp_path, {"fc": nir.Linear(weight=np.ones((3, 4))), "lif": lif(3),
                            "fc2": nir.Linear(weight=np.ones((2, 3)))}, name="e.nir"), "the graph ends with 'fc2'")
    li = nir.LI(tau=np.full(3, 2e-4), r=np.full(3, 2.0), v_leak=np.zeros(3))
    refuse(write(tmp_path, {"fc": nir.Linear(weight=np.ones((3, 4))), "li": li, "fc2": nir.Linear(weight=np.ones((2, 3))),
                            "lif": lif(2)}, name="l.nir"), "node 'li' is a LI, which does not spike")
    refuse(write(tmp_path, {"input": nir.Input(np.array([5])), "fc": nir.Linear(weight=np.ones((3, 4))), "lif": lif(3)},
                 name="s.nir"), "input node 'input' has shape \\[5\\] but its layer has 4 inputs")
    refuse(dense(tmp_path, np.ones((3, 2)), lif(4), name="n.nir"), "has 4 values for a layer of 3 neurons")


def test_refuses_bad_files_and_missing_encoding(tmp_path, digits):
    (tmp_path / "t.nir").write_text("not hdf5")
    refuse(tmp_path / "t.nir", "not a NIR file")
    refuse(tmp_path / "absent.nir", "no such NIR file")
    import h5py
    with h5py.File(tmp_path / "h.nir", "w") as f:
        f.create_dataset("x", data=1)
    refuse(tmp_path / "h.nir", "no 'node' group")
    p = dense(tmp_path, np.ones((3, 2)), lif(3))
    with pytest.raises(UserError, match="give --dataset .* or --levels P"):
        import_nir(p, ImportConfig())
    with pytest.raises(UserError, match="the graph takes 2 inputs but digits has 64"):
        import_nir(p, ImportConfig(), digits)
    refuse(p, "--weights has 2 entries for 1 layers", weights=("uniform:4", "uniform:2"))
    refuse(p, "need data", calibrate=True)


# ---------------------------------------------------------------- export back to NIR

def small_model(reset="hard", leak=Leak("decay", 2), bias=True):
    w = np.array([[3, -1, 0, 7], [-7, 2, 1, 1], [0, 0, 5, -2]])
    l0 = DenseLayer(w, WeightFormat("uniform", 4), 4, 5, reset, leak, np.array([1, -2, 0]) if bias else None,
                    8 if bias else 0, scale=0.125)
    l1 = DenseLayer(np.array([[1, -1, 1], [0, 1, 1]]), WeightFormat("uniform", 2), 2, 2, reset, Leak("none"), scale=0.5)
    return IntModel((l0, l1), 6, Encoding("rate", 16))


def test_export_nir_reads_back_with_the_values(tmp_path):
    model = small_model()
    write_nir(model, tmp_path / "m.nir", dt=1e-3)
    g = nir.read(tmp_path / "m.nir")  # nir's own reader, with its type check
    assert isinstance(g.nodes["fc0"], nir.Affine) and isinstance(g.nodes["fc1"], nir.Linear)
    assert g.nodes["fc0"].weight.shape == (3, 4) and g.nodes["fc1"].weight.shape == (2, 3)
    assert np.array_equal(g.nodes["fc0"].weight, (model.layers[0].weight * 0.125).astype(np.float32))
    assert np.array_equal(g.nodes["fc0"].bias, np.array([0.125, -0.25, 0], np.float32))
    lif0, if1 = g.nodes["lif0"], g.nodes["lif1"]
    assert isinstance(lif0, nir.LIF) and isinstance(if1, nir.IF)
    assert np.allclose(lif0.tau, 4e-3) and np.allclose(lif0.r, 4.0)  # decay:2: beta 3/4, tau = 4 dt
    assert np.allclose(lif0.v_threshold, 4.5 * 0.125) and np.allclose(if1.v_threshold, 1.5 * 0.5)
    assert np.allclose(if1.r, 1e3) and not lif0.v_reset.any() and not lif0.v_leak.any()
    assert int(g.metadata["timesteps"]) == 6 and int(g.metadata["levels"]) == 16


def test_export_then_import_is_the_same_model(tmp_path):
    for model in (small_model(), small_model(leak=Leak("shift", 1), bias=False), small_model(leak=Leak("decay", 1))):
        write_nir(model, tmp_path / "m.nir")
        back = import_nir(tmp_path / "m.nir", ImportConfig(levels=16)).model
        assert back.timesteps == model.timesteps
        for a, b in zip(model.layers, back.layers):
            assert (a.weight_format, a.membrane_bits, a.threshold, a.leak, a.reset) == \
                   (b.weight_format, b.membrane_bits, b.threshold, b.leak, b.reset)
            assert np.array_equal(a.weight, b.weight)
            assert (a.bias is None and b.bias is None) or np.array_equal(a.bias, b.bias)


def test_export_then_import_of_the_shipped_model_keeps_its_accuracy(tmp_path, digits):
    from mintaccel.core.shipped import shipped_model_path
    model = load_model(shipped_model_path())
    write_nir(model, tmp_path / "m.nir")
    result = import_nir(tmp_path / "m.nir", ImportConfig(), digits)
    spikes = rate_encode(digits.x_test, model.timesteps, digits.levels)
    assert result.figures["test_accuracy"] == accuracy(run_batched(model, spikes).predictions, digits)


def test_export_refuses_soft_reset(tmp_path):
    with pytest.raises(UserError, match="layer 0 uses a soft \\(subtract\\) reset, which NIR cannot express"):
        to_nir(small_model(reset="soft"))
    with pytest.raises(UserError, match="soft"):
        write_nir(small_model(reset="soft"), tmp_path / "x.nir")
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------- conv graphs (issue 11)

def conv_graph(tmp_path, pool="AvgPool2d", seed=0, bias=True, name="c.nir", thr=1.0):
    """Input 1x8x8 -> Conv2d(3, k3, p1) -> LIF (threshold `thr`) -> pool 2 -> Conv2d(4, k3, s2, p1) -> LIF
    -> Flatten -> Affine(5) -> LIF: random weights (seeded) large enough that every layer fires."""
    rng = np.random.default_rng(seed)
    conv = lambda cin, cout, stride, hw: nir.Conv2d(
        input_shape=hw, weight=rng.normal(0.4, 0.6, (cout, cin, 3, 3)), stride=stride, padding=1, dilation=1,
        groups=1, bias=rng.normal(0, 0.1, cout) if bias else np.zeros(cout))
    pooling = getattr(nir, pool)(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    nodes = {"input": nir.Input(np.array([1, 8, 8])), "conv1": conv(1, 3, 1, (8, 8)),
             "lif1": lif(3 * 64, thr=thr), "pool": pooling, "conv2": conv(3, 4, 2, (4, 4)), "lif2": lif(16),
             "flat": nir.Flatten(input_type={"input": np.array([4, 2, 2])}, start_dim=0),
             "fc": nir.Affine(weight=rng.normal(0.2, 0.5, (5, 16)), bias=np.zeros(5)), "lif3": lif(5),
             "output": nir.Output(np.array([5]))}
    return write(tmp_path, nodes, name=name)


def torch_float_reference(path, spikes: np.ndarray) -> np.ndarray:
    """The conv graph of `conv_graph` run by torch, written independently of nir_import (float64): spike counts."""
    import torch.nn.functional as F
    n = read_graph(path).nodes  # only the parameters: this graph's LIF shapes are flat, which nir.read refuses
    x = torch.from_numpy(spikes.astype(np.float64))
    batch, steps = x.shape[:2]
    beta = 1 - 1e-4 / 8e-4
    state = {}

    def lif_step(key, cur, node):
        v, fired = state.get(key, (torch.zeros_like(cur), torch.zeros_like(cur, dtype=torch.bool)))
        thr = torch.from_numpy(np.asarray(node.v_threshold, np.float64)).reshape(cur.shape[1:])
        v = beta * torch.where(fired, 0.0, v) + (1e-4 * 8.0 / 8e-4) * cur
        fired = v > thr
        state[key] = (v, fired)
        return fired.double()

    def conv(node, s):
        w, b = (torch.from_numpy(np.asarray(a, np.float64)) for a in (node.weight, node.bias))
        return F.conv2d(s, w, b, stride=int(np.asarray(node.stride).reshape(-1)[0]), padding=1)

    counts = 0
    for t in range(steps):
        s = x[:, t].reshape(batch, 1, 8, 8)
        s = lif_step(1, conv(n["conv1"], s), n["lif1"])
        s = F.avg_pool2d(s, 2) if type(n["pool"]).__name__ == "AvgPool2d" else F.avg_pool2d(s, 2, divisor_override=1)
        s = lif_step(2, conv(n["conv2"], s), n["lif2"])
        s = s.flatten(1) @ torch.from_numpy(np.asarray(n["fc"].weight, np.float64)).T
        s = lif_step(3, s + torch.from_numpy(np.asarray(n["fc"].bias, np.float64)), n["lif3"])
        counts = counts + s
    return counts.numpy()


@pytest.mark.parametrize("pool", ["AvgPool2d", "SumPool2d"])
def test_conv_float_simulation_equals_a_torch_conv_reference(tmp_path, pool):
    from tests.conftest import random_spikes
    path = conv_graph(tmp_path, pool, thr=np.repeat([0.8, 1.0, 1.2], 64))
    spikes = random_spikes(1, 40, 6, 64, density=0.4)
    ours = simulate(float_net(read_graph(path)), spikes)
    theirs = torch_float_reference(path, spikes)
    assert ours.sum() > 0 and np.array_equal(ours, theirs)


def integer_reference(model: IntModel, spikes: np.ndarray):
    """docs/arithmetic.md written again with torch (float64 holds these integers exactly): per layer spikes and
    stored membranes, to compare with sim.reference."""
    import torch.nn.functional as F
    x = torch.from_numpy(spikes.astype(np.float64))
    batch, steps = x.shape[:2]
    u = [torch.zeros(batch, l.n_out, dtype=torch.float64) for l in model.layers]
    out = [[] for _ in model.layers]
    mem = [[] for _ in model.layers]
    for t in range(steps):
        s = x[:, t]
        for i, l in enumerate(model.layers):
            if l.kind == "flatten":
                out[i].append(s)
                continue
            if l.kind == "pool":
                s = F.avg_pool2d(s.view(batch, *l.in_shape), l.kernel, l.stride, divisor_override=1).flatten(1)
                out[i].append(s)
                continue
            w = torch.from_numpy(l.weight.astype(np.float64))
            b = None if l.bias is None else torch.from_numpy(l.bias.astype(np.float64))
            if l.kind == "conv2d":
                cur = F.conv2d(s.view(batch, *l.in_shape), w, b, l.stride, l.padding).flatten(1)
            else:
                cur = s @ w.T + (0 if b is None else b)
            h = u[i] + cur
            fire = h >= l.threshold
            r = torch.where(fire, 0.0, h) if l.reset == "hard" else h - l.threshold * fire
            if l.leak.kind != "none":
                shifted = torch.trunc(r / 2**l.leak.k)
                r = shifted if l.leak.kind == "shift" else r - shifted
            u[i] = r.clamp(-l.membrane_max, l.membrane_max)
            s = fire.double()
            out[i].append(s)
            mem[i].append(u[i])
    return ([torch.stack(o, 1).numpy() for o in out], [torch.stack(m, 1).numpy() if m else None for m in mem])


@pytest.mark.parametrize("weights, membrane", [("uniform:8", 8), ("uniform:4", 4), ("uniform:2", 2), ("pot:3", 3)])
def test_conv_import_is_the_integer_network_the_reference_runs(tmp_path, weights, membrane):
    """Layer kinds, the AvgPool2d as a sum pool with input_max K^2 downstream, and every layer's spikes and
    stored membranes of sim.reference equal an independent integer evaluation."""
    from tests.conftest import random_spikes
    path = conv_graph(tmp_path)
    model = import_nir(path, ImportConfig(levels=16, weights=(weights,), membrane=(membrane,), timesteps=6)).model
    assert [l.kind for l in model.layers] == ["conv2d", "pool", "conv2d", "flatten", "dense"]
    assert model.layers[1].op == "sum" and model.layers[2].input_max == 4 and model.layers[2].stride == 2
    assert model.input_shape == (1, 8, 8) and model.layers[0].bias is not None
    spikes = random_spikes(2, 30, 6, 64, density=0.4)
    trace = run(model, spikes)
    want_spikes, want_mem = integer_reference(model, spikes)
    for i in range(len(model.layers)):
        assert np.array_equal(trace.spikes[i], want_spikes[i]), i
        assert (trace.membranes[i] is None) == (want_mem[i] is None)
        if want_mem[i] is not None:
            assert np.array_equal(trace.membranes[i], want_mem[i]), i
    assert trace.spikes[0].any() and trace.spikes[2].any()


def test_avgpool_is_a_sum_pool_with_its_quarter_in_the_next_weights(tmp_path):
    avg = float_net(read_graph(conv_graph(tmp_path, "AvgPool2d", name="a.nir")))
    g = read_graph(conv_graph(tmp_path, "SumPool2d", name="s.nir"))
    assert not np.array_equal(float_net(g).layers[2].weight, avg.layers[2].weight)
    g.nodes["conv2"].weight = g.nodes["conv2"].weight / 4
    summed = float_net(g)
    assert [type(l).__name__ for l in avg.layers] == ["FloatLayer", "FloatPool", "FloatLayer", "FloatFlatten", "FloatLayer"]
    for a, b in zip(avg.neuron_layers, summed.neuron_layers):
        assert np.allclose(a.weight, b.weight, rtol=1e-12, atol=0)
    formats = layer_formats(avg, ("uniform:4",), (4,), None)
    choices = [Choice(0.1, spiking_threshold(0.1))] * 3
    build = lambda net: quantize(net, formats, choices, "hard", 4, Encoding("rate", 16))
    assert all(np.array_equal(x.weight, y.weight) for x, y in zip(build(avg).neuron_layers, build(summed).neuron_layers))


def test_per_channel_thresholds_fold_into_the_kernels(tmp_path):
    """A conv layer's threshold (and gain) may differ between channels, not between positions of a channel."""
    thr = np.repeat([0.5, 1.0, 2.0], 64)
    net = float_net(read_graph(conv_graph(tmp_path, thr=thr)))
    plain = float_net(read_graph(conv_graph(tmp_path, name="p.nir")))
    ratio = plain.layers[0].weight / net.layers[0].weight
    assert np.allclose(ratio[:, 0, 0, 0], [0.5, 1.0, 2.0]) and np.allclose(ratio, ratio[:, :1, :1, :1])
    thr[5] = 0.9
    refuse(conv_graph(tmp_path, thr=thr, name="v.nir"), "node 'lif1': .* varies across the positions of channel 0")


def _conv_nodes(**conv):
    kw = dict(input_shape=(8, 8), weight=np.ones((2, 1, 3, 3)), stride=1, padding=1, dilation=1, groups=1,
              bias=np.zeros(2))
    kw.update(conv)
    w = kw["weight"]
    return {"input": nir.Input(np.array([w.shape[1], 8, 8])), "conv": nir.Conv2d(**kw), "lif": lif(2 * 64)}


@pytest.mark.parametrize("nodes, match", [
    (_conv_nodes(dilation=2), "node 'conv': dilation 2x2 is not supported"),
    (_conv_nodes(weight=np.ones((2, 2, 3, 3)), groups=2), "node 'conv': grouped convolution"),
    (_conv_nodes(stride=3), "node 'conv': stride 3 is not supported"),
    (_conv_nodes(weight=np.ones((2, 1, 3, 2))), "node 'conv': Conv2d weight of shape \\[2, 1, 3, 2\\]: .*square"),
    (_conv_nodes(weight=np.ones((2, 1, 8, 8)), padding=0), "node 'conv': kernel 8 x 8 is outside 1..7"),
    (_conv_nodes(padding=(1, 0)), "node 'conv': padding 1x0 differs between height and width"),
    (_conv_nodes(weight=np.ones((2, 1, 2, 2)), padding="same"), "node 'conv': padding 'same' with a 2 x 2 kernel"),
    (_conv_nodes(padding=3), "node 'conv': padding 3 is outside 0..2"),
    ({"input": nir.Input(np.array([64])), "conv": _conv_nodes()["conv"], "lif": lif(128)},
     "node 'conv' \\(Conv2d\\) receives a vector of 64"),
    ({"input": nir.Input(np.array([1, 8, 8])), "fc": nir.Linear(weight=np.ones((3, 64))), "lif": lif(3),
      "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
      "fc2": nir.Linear(weight=np.ones((3, 3))), "lif2": lif(3)}, "node 'pool' \\(SumPool2d\\) receives a vector of 3"),
    ({**_conv_nodes(), "pool": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                             padding=np.array([1, 1]))}, "node 'pool' \\(AvgPool2d\\): padding 1x1"),
    ({**_conv_nodes(), "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                             padding=np.array([0, 0])),
      "pool2": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))},
     "node 'pool2' \\(SumPool2d\\) follows a pool"),
    ({**_conv_nodes(), "fc": nir.Linear(weight=np.ones((3, 128))), "lif2": lif(3)},
     "node 'fc' \\(Linear\\) follows a 2x8x8 map: put a Flatten node between them"),
    ({**_conv_nodes(), "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                             padding=np.array([0, 0]))}, "the graph ends with 'pool'"),
    ({"input": nir.Input(np.array([1, 8, 8])), "conv": _conv_nodes()["conv"],
      "flat": nir.Flatten(input_type={"input": np.array([2, 8, 8])}, start_dim=0), "lif": lif(128)},
     "node 'flat' \\(Flatten\\) sits between 'conv' and its neurons"),
    ({"input": nir.Input(np.array([1, 8])), "c": nir.Conv1d(input_shape=8, weight=np.ones((2, 1, 3)), stride=1,
                                                            padding=0, dilation=1, groups=1, bias=np.zeros(2)),
      "lif": lif(12)}, "node 'c' is a Conv1d"),
])
def test_refuses_conv_graphs_outside_the_spec(tmp_path, nodes, match):
    refuse(write(tmp_path, nodes), match)


def conv_model(tmp_path, weights="uniform:4", membrane=4):
    return import_nir(conv_graph(tmp_path, name="m.nir"),
                      ImportConfig(levels=16, weights=(weights,), membrane=(membrane,), timesteps=6)).model


@pytest.mark.parametrize("weights, membrane", [("uniform:4", 4), ("uniform:2", 2), ("binary", 2)])
def test_conv_export_then_import_is_the_same_model(tmp_path, weights, membrane):
    from tests.conftest import random_spikes
    model = conv_model(tmp_path, weights, membrane)
    write_nir(model, tmp_path / "e.nir")
    g = nir.read(tmp_path / "e.nir")  # nir's own reader and type check accept it
    assert [type(g.nodes[k]).__name__ for k in ("fc0", "pool1", "fc2", "flat3", "fc4")] == [
        "Conv2d", "SumPool2d", "Conv2d", "Flatten", "Linear"]
    back = import_nir(tmp_path / "e.nir", ImportConfig(levels=16)).model
    assert back.timesteps == model.timesteps and len(back.layers) == len(model.layers)
    for a, b in zip(model.layers, back.layers):
        assert type(a) is type(b)
        if hasattr(a, "weight"):
            assert np.array_equal(a.weight, b.weight) and a.threshold == b.threshold and a.leak == b.leak
            bias = lambda l: np.zeros(l.bias_shape, np.int64) if l.bias is None else l.bias  # 0 is no bias
            assert np.array_equal(bias(a), bias(b))
    spikes = random_spikes(3, 50, model.timesteps, 64, density=0.4)
    assert np.array_equal(run(model, spikes).predictions, run(back, spikes).predictions)


def test_export_refuses_max_pool(tmp_path):
    from mintaccel.core.conv import PoolLayer
    import dataclasses
    model = conv_model(tmp_path)
    layers = list(model.layers)
    layers[1] = PoolLayer("max", layers[1].in_shape, 2)
    layers[2] = dataclasses.replace(layers[2], input_max=1)
    with pytest.raises(UserError, match="layer 1 is a max pool .* NIR cannot express"):
        to_nir(IntModel(tuple(layers), model.timesteps, model.encoding))


# ---------------------------------------------------------------- a conv graph written by SpikingJelly

SPIKINGJELLY = Path(__file__).parent / "fixtures" / "spikingjelly_digits_conv.nir"


def test_spikingjelly_conv_graph_imports_and_keeps_its_accuracy(digits):
    """SpikingJelly 2.0's exporter (Conv2d, LIF, AvgPool2d, Flatten, Linear; benchmarks/make_spikingjelly_fixture.py):
    the float simulation is its network; the integer model at 8/8 bits agrees with it almost always, and at
    4/4 bits after calibration stays close."""
    net = float_net(read_graph(SPIKINGJELLY))
    assert [type(l).__name__ for l in net.layers] == ["FloatLayer", "FloatPool", "FloatLayer", "FloatPool",
                                                      "FloatFlatten", "FloatLayer"]
    assert all(l.beta == pytest.approx(0.5) for l in net.neuron_layers)  # tau = 2 steps
    r8 = import_nir(SPIKINGJELLY, ImportConfig(weights=("uniform:8",), membrane=(8,)), digits)
    assert r8.figures["float_accuracy"] > 0.85
    assert r8.figures["agreement_with_float"] >= 0.95
    r4 = import_nir(SPIKINGJELLY, ImportConfig(weights=("uniform:4",), membrane=(4,), calibrate=True,
                                               calibration_samples=500), digits)
    assert r4.figures["test_accuracy"] >= r8.figures["float_accuracy"] - 0.06


@pytest.mark.slow
def test_spikingjelly_fixture_regenerates(tmp_path, digits):
    """Where spikingjelly is installed: its exporter still writes a graph that imports (one short epoch)."""
    pytest.importorskip("spikingjelly", reason="spikingjelly is not installed: the committed fixture is tested instead")
    import runpy
    import sys
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "make_spikingjelly_fixture.py"
    argv = sys.argv
    sys.argv = [str(script), "--epochs", "1", "-o", str(tmp_path / "sj.nir")]
    try:
        with pytest.raises(SystemExit) as e:
            runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = argv
    assert e.value.code == 0
    result = import_nir(tmp_path / "sj.nir", ImportConfig(), digits)
    assert [l.kind for l in result.model.layers] == ["conv2d", "pool", "conv2d", "pool", "flatten", "dense"]


def test_finetune_of_a_conv_graph_goes_through_the_conv_qat_network(digits, tmp_path):
    """One epoch from the SpikingJelly graph: the QuantSNN of its arch, checked against the reference model
    prediction for prediction inside `finetune`; a graph that ends with a conv is refused in one line."""
    from mintaccel.model_export.nir_import.finetune import arch_of
    net = float_net(read_graph(SPIKINGJELLY))
    assert arch_of(net) == "c4k3s1p1,s2s2,c8k3s1p1,s2s2,f10"
    result = import_nir(SPIKINGJELLY, ImportConfig(weights=("uniform:4",), membrane=(4,), finetune_epochs=1), digits)
    assert [l.kind for l in result.model.layers] == ["conv2d", "pool", "conv2d", "pool", "flatten", "dense"]
    assert "test_accuracy_before_finetune" in result.figures and result.figures["test_accuracy"] > 0.5
    with pytest.raises(UserError, match="a conv graph whose last layer is a Conv2d cannot be fine-tuned"):
        import_nir(write(tmp_path, _conv_nodes()), ImportConfig(finetune_epochs=1), digits)
