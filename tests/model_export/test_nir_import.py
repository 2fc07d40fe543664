"""NIR import and export: the snnTorch -> NIR -> mintaccel round trip, the exact mappings, every refusal."""

from __future__ import annotations


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


def test_refuses_convolution_flatten_and_pooling(tmp_path):
    conv = nir.Conv2d(input_shape=(8, 8), weight=np.zeros((2, 1, 3, 3)), stride=1, padding=0, dilation=1, groups=1,
                      bias=np.zeros(2))
    p = write(tmp_path, {"input": nir.Input(np.array([1, 8, 8])), "conv1": conv,
                         "flat": nir.Flatten(input_type={"input": np.array([2, 6, 6])}, start_dim=0),
                         "fc": nir.Linear(weight=np.zeros((10, 72))), "lif": lif(10)})
    refuse(p, "node 'conv1' is a Conv2d: convolution is not supported")
    p = write(tmp_path, {"input": nir.Input(np.array([1, 8, 8])),
                         "flat": nir.Flatten(input_type={"input": np.array([1, 8, 8])}, start_dim=0),
                         "fc": nir.Linear(weight=np.zeros((10, 64))), "lif": lif(10)}, name="f.nir")
    refuse(p, "node 'flat' is a Flatten")
    p = write(tmp_path, {"fc": nir.Linear(weight=np.zeros((4, 4))), "lif": lif(4),
                         "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                               padding=np.array([0, 0]))}, name="p.nir")
    refuse(p, "node 'pool' is a SumPool2d: pooling is not supported")
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
