"""Fine-tuning an imported graph: QAT (model_export.qat) from the imported weights and scales."""

from __future__ import annotations

import numpy as np

from mintaccel.core.model import IntModel
from mintaccel.core.errors import UserError
from mintaccel.model_export.nir_import.net import FloatLayer, FloatNet, FloatPool
from mintaccel.model_export.nir_import.quantize import Choice, LayerFormat


def finetune(net: FloatNet, formats: list[LayerFormat], choices: list[Choice], model: IntModel, split,
             epochs: int, lr: float = 1e-3, batch_size: int = 64, seed: int = 0, threads: int = 1,
             progress=None):
    """QAT from the imported weights and scales (model_export.qat); returns the exported IntModel.

    The QuantSNN starts as the imported integer model: the same weights, scales, integer thresholds
    (its real threshold is set to theta * s), leaks and resets per layer.
    """
    import torch
    from mintaccel.model_export.qat import LayerSpec, QuantSNN, TrainConfig
    from mintaccel.model_export.qat_layers import Neurons
    from mintaccel.model_export.train import encoded, fit, predict
    from mintaccel.sim.reference import run_batched
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    layers = net.neuron_layers
    cfg = TrainConfig(
        dataset=split.name, hidden=tuple(l.n_out for l in layers[:-1]), arch=arch_of(net),
        layers=tuple(LayerSpec(str(f.weights), str(f.membrane_bits)) for f in formats),
        timesteps=model.timesteps, reset="hard", leak=str(model.neuron_layers[0].leak),
        bias=any(l.bias is not None for l in layers), bias_bits=max(f.bias_bits for f in formats),
        epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, threads=threads)
    qnet = QuantSNN([net.n_inputs] + [l.n_out for l in layers], cfg, net.input_shape if cfg.arch else None)
    qlayers = [q for q in qnet.layers if isinstance(q, Neurons)]
    for qlayer, layer, fmt, ch, ilayer in zip(qlayers, layers, formats, choices, model.neuron_layers):
        _init_quant_layer(qlayer, layer, fmt, ch, ilayer)
    xtr, xte = encoded(split, model.timesteps)
    fit(qnet, xtr, torch.from_numpy(split.y_train), cfg, progress)
    out = qnet.to_int_model(model.encoding, dict(model.meta))
    if not np.array_equal(run_batched(out, xte.numpy().astype(np.uint8)).predictions, predict(qnet, xte)):
        raise RuntimeError("fine-tuned integer model disagrees with the torch eval model (a mintaccel bug)")
    return out


def arch_of(net: FloatNet) -> str:
    """The `--arch` text of a conv graph (model_export/arch.py), "" for a dense chain (the MLP)."""
    if all(isinstance(l, FloatLayer) and not l.conv for l in net.layers):
        return ""
    if not isinstance(net.layers[-1], FloatLayer) or net.layers[-1].conv:
        raise UserError("--finetune needs a dense output layer after the maps (a conv graph whose last layer is "
                        "a Conv2d cannot be fine-tuned)")
    tokens = []
    for l in net.layers:
        if isinstance(l, FloatPool):
            tokens.append(f"s{l.kernel}s{l.stride}")
        elif isinstance(l, FloatLayer):
            k = l.weight.shape[2] if l.conv else 0
            tokens.append(f"c{l.weight.shape[0]}k{k}s{l.stride}p{l.padding}" if l.conv else f"f{l.n_out}")
    return ",".join(tokens)  # a flatten is implied before the first dense layer after a map


def _init_quant_layer(qlayer, layer: FloatLayer, fmt: LayerFormat, ch: Choice, ilayer) -> None:
    import torch
    with torch.no_grad():
        qlayer.synapse.weight.copy_(torch.from_numpy(layer.dc_weight()).float())
        if layer.bias is None:
            qlayer.synapse.register_parameter("bias", None)
            qlayer.bias_bits = 0
        else:
            qlayer.synapse.bias.copy_(torch.from_numpy(layer.dc_bias()).float())
            qlayer.bias_bits = fmt.bias_bits
        qlayer.scale.fill_(ch.scale)
    qlayer.threshold_real = ch.threshold * ch.scale
    qlayer.leak = ilayer.leak
    qlayer.reset = ilayer.reset

