"""Quantization-aware training of LIF networks (PyTorch, CPU).

Quantized layers compute on an **integer track**: every value in the forward pass is an exact integer
(float32 holds them exactly: docs/arithmetic.md section 3 keeps them below 2^24), every decision
(spike, reset, leak rounding, clamp) follows docs/arithmetic.md, and the real values only carry
gradients (straight-through estimators and a surrogate spike derivative). So in eval mode this network
and `sim.reference` agree exactly, by construction and by test.

A `float` layer is the unquantized LIF baseline: real weights, real threshold 1.0, exact real leak.

Two shapes of network: the MLP of `TrainConfig.hidden` (dense layers, stepped time-major as it always
was, so its training is unchanged bit for bit), and any `TrainConfig.arch` (model_export/arch.py: conv2d,
pools, flatten, dense), run layer-major: each layer takes all T steps of its input at once (one conv over
T * batch frames), then steps its neurons through time. Layers have no feedback, so both orders compute
the same integers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from mintaccel.core.errors import UserError
from mintaccel.model_export import arch as arch_text
from mintaccel.model_export.qat_layers import Flatten, Neurons, QuantConv, QuantLIF, SpikeFn, SpikePool
from mintaccel.model_export.quantizers import SigmoidSumQuantizer
from mintaccel.core.model import MEMBRANE_BITS, RESETS, Encoding, IntModel, Leak, ModelError, WeightFormat

__all__ = ["LayerSpec", "TrainConfig", "QuantSNN", "QuantLIF", "QuantConv", "SpikePool", "Flatten", "SpikeFn"]


@dataclass(frozen=True)
class LayerSpec:
    """How one layer is quantized for training."""

    weights: str = "uniform:2"
    """`float`, `uniform:B`, `pot:B`, `binary`, or `sigmoid:uniform:2` (ternary through the sigmoid quantizer)."""
    membrane: str = "2"
    """Membrane bits (`2`, `3`, `4`, `8`), `float`, or `squat:B` (threshold-centred levels, not exportable)."""

    def __post_init__(self):
        self.weight_format()
        if self.membrane == "float" or self.membrane.startswith("squat:"):
            bits = self.membrane.partition(":")[2]
            if self.membrane != "float" and bits not in ("1", "2", "3", "4", "5", "6", "7", "8"):
                raise UserError(f"membrane {self.membrane!r}: squat needs bits 1..8, e.g. squat:2")
        elif not self.membrane.isdigit() or int(self.membrane) not in MEMBRANE_BITS:
            raise UserError(f"membrane {self.membrane!r}: choose bits from {MEMBRANE_BITS}, 'float' or 'squat:B'")
        if self.weights == "float" and self.membrane != "float":
            raise UserError("float weights go with float membranes (use --membrane float)")

    @property
    def is_float(self) -> bool:
        return self.weights == "float"

    @property
    def sigmoid(self) -> bool:
        return self.weights.startswith("sigmoid:")

    def weight_format(self) -> WeightFormat | None:
        if self.weights == "float":
            return None
        try:
            return WeightFormat.parse(self.weights.removeprefix("sigmoid:"))
        except ModelError as e:
            raise UserError(str(e)) from None


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run; two runs with equal configs give equal bits."""

    dataset: str = "digits"
    """`digits` (scikit-learn, offline) or `mnist` (IDX files in `data_dir`)."""
    hidden: tuple[int, ...] = (128,)
    """Hidden layer sizes (neurons) of the MLP; input and output sizes come from the dataset. Empty
    (ignored) when `arch` is given."""
    layers: tuple[LayerSpec, ...] = (LayerSpec(),)
    """One spec for every neuron layer, or one per neuron layer (in order; pools and flatten have none)."""
    timesteps: int = 8
    """T: time steps per sample."""
    reset: str = "hard"
    leak: str = "shift:1"
    """`none`, `shift:K` (u * 2^-K, MINT) or `decay:K` (u - u * 2^-K)."""
    threshold: float = 1.0
    """Real threshold; the integer threshold is round(threshold / scale), at least 1."""
    bias: bool = False
    """Train an integer bias per neuron (bias_bits wide)."""
    bias_bits: int = 8
    epochs: int = 30
    batch_size: int = 64
    lr: float = 5e-3
    """Adam learning rate (cosine-annealed to 0)."""
    seed: int = 0
    threads: int = 1
    """torch threads; fixed so that training is reproducible bit for bit."""
    data_dir: str | None = None
    """Folder of MNIST IDX files (default: ../shared/data/mnist-test beside the checkout)."""
    arch: str = ""
    """Layer tokens such as `c8k3,p2,c16k3,p2,f10` (model_export/arch.py), kept in their explicit
    spelling; empty: the MLP of `hidden`."""
    augment_shift: int = 0
    """Training-set augmentation: each training image moved by a random (dy, dx) in -K..K positions per
    sample and batch, zeros shifted in (seeded by `seed`); 0: none. Needs image data."""
    float_init_epochs: int = 0
    """Train the float twin (same network, float weights and membranes) this many epochs first and start
    from its weights (each quantized layer's scale re-initialised from them); 0: a random start."""
    label_smoothing: float = 0.0
    """Label smoothing of the cross-entropy on output spike counts (0: plain cross-entropy)."""
    weight_decay: float = 0.0
    """Adam's L2 weight decay (0: none)."""
    distill: float = 0.0
    """Weight in [0, 1) of knowledge distillation from the float twin (needs `float_init_epochs`): the
    loss is (1 - distill) * cross-entropy + distill * KL(twin || network) of the spike-count logits at
    temperature `DISTILL_TEMPERATURE`, scaled by its square; 0: cross-entropy alone."""

    def __post_init__(self):
        if self.arch:
            object.__setattr__(self, "arch", arch_text.canonical(self.arch))
            object.__setattr__(self, "hidden", ())
        if self.reset not in RESETS:
            raise UserError(f"reset must be 'hard' or 'soft', not {self.reset!r}")
        try:
            Leak.parse(self.leak)
        except ModelError as e:
            raise UserError(f"--leak {self.leak}: {e}") from None
        n = self.n_neuron_layers
        if len(self.layers) not in (1, n):
            raise UserError(f"{len(self.layers)} layer formats given for {n} layers (give 1 or {n})")
        for name in ("timesteps", "epochs", "batch_size", "threads"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be at least 1")
        for name in ("augment_shift", "float_init_epochs"):
            if getattr(self, name) < 0:
                raise UserError(f"{name} must be at least 0")
        if not 0 <= self.label_smoothing < 1:
            raise UserError("label smoothing must be in [0, 1)")
        if not 0 <= self.weight_decay < float("inf"):
            raise UserError("weight decay must be a finite number >= 0")
        if not 0 <= self.distill < 1:
            raise UserError("distill must be in [0, 1)")
        if self.distill and not self.float_init_epochs:
            raise UserError("distillation learns from the float twin: give float-init epochs too (--float-init-epochs)")
        if any(h < 1 for h in self.hidden):
            raise UserError("hidden layer sizes must be at least 1")
        if not self.threshold > 0:
            raise UserError("threshold must be positive")
        if self.bias and not 2 <= self.bias_bits <= 16:
            raise UserError("bias bits must be in 2..16")

    @property
    def arch_tokens(self) -> tuple | None:
        return arch_text.parse(self.arch) if self.arch else None

    @property
    def n_neuron_layers(self) -> int:
        return arch_text.neuron_layers(self.arch_tokens) if self.arch else len(self.hidden) + 1

    def layer_specs(self) -> tuple[LayerSpec, ...]:
        return self.layers * self.n_neuron_layers if len(self.layers) == 1 else self.layers

    def to_json(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        d["layers"] = [asdict(s) for s in self.layers]
        if not self.arch:  # an MLP's configuration reads as it always did
            del d["arch"]
        for name in OPTIONAL_FIELDS:  # so do the configurations that leave the later options off
            if d[name] == OPTIONAL_FIELDS[name]:
                del d[name]
        return d

    @classmethod
    def from_json(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        d["hidden"] = tuple(d["hidden"])
        d["layers"] = tuple(LayerSpec(**s) for s in d["layers"])
        return cls(**d)


#: Training options added after the first shipped models, with their "off" value: `to_json` omits them
#: when off, so the configuration those models record is still the one that remakes them.
OPTIONAL_FIELDS = {"augment_shift": 0, "float_init_epochs": 0, "label_smoothing": 0.0, "weight_decay": 0.0,
                   "distill": 0.0}
#: Softmax temperature of the distillation loss (Hinton et al.'s usual range is 2-4).
DISTILL_TEMPERATURE = 2.0


class QuantSNN(nn.Module):
    """The network of a `TrainConfig`: `sizes` is [inputs, *hidden, outputs] for the MLP; a `cfg.arch`
    network also needs `input_shape`, the (C, H, W) of its input maps (sizes[0] = C*H*W)."""

    def __init__(self, sizes: list[int], cfg: TrainConfig, input_shape: tuple[int, int, int] | None = None):
        super().__init__()
        self.cfg = cfg
        self.sizes = list(sizes)
        self.input_shape = None if input_shape is None else tuple(input_shape)
        specs = cfg.layer_specs()
        if not cfg.arch:
            self.layers = nn.ModuleList(QuantLIF(a, b, s, cfg) for a, b, s in zip(sizes, sizes[1:], specs))
            return
        if self.input_shape is None:
            raise UserError("a conv architecture (--arch) needs image data: this data set has no image shape")
        c, h, w = self.input_shape
        if c * h * w != sizes[0]:
            raise UserError(f"input shape {c}x{h}x{w} does not hold {sizes[0]} inputs")
        layers, spec = [], iter(specs)
        for token, shape_in, shape_out in arch_text.plan(cfg.arch_tokens, self.input_shape, sizes[-1]):
            if token == "flatten":
                layers.append(Flatten(shape_in))
            elif isinstance(token, arch_text.Conv):
                layers.append(QuantConv(shape_in, token.channels, token.kernel, token.stride, token.padding,
                                        next(spec), cfg))
            elif isinstance(token, arch_text.Pool):
                layers.append(SpikePool(token.op, shape_in, token.kernel, token.stride))
            else:
                layers.append(QuantLIF(shape_in, shape_out, next(spec), cfg))
        self.layers = nn.ModuleList(layers)

    @torch.no_grad()
    def start_from(self, other: "QuantSNN") -> None:
        """Take the weights and biases of `other`, a network of the same layers (its float twin), and
        re-initialise each quantized layer's scale from them."""
        for mine, theirs in zip(self.layers, other.layers):
            if not isinstance(mine, Neurons):
                continue
            mine.synapse.load_state_dict(theirs.synapse.state_dict())
            if mine.fmt is not None:
                mine.scale.fill_(mine.quantizer.init_scale(mine.synapse.weight))

    def set_temperature(self, temperature: float):
        for m in self.modules():
            if isinstance(m, SigmoidSumQuantizer):
                m.temperature = temperature

    def forward(self, x: torch.Tensor, record: bool = False):
        """x: spikes [B, T, inputs] (float 0/1). Returns output counts [B, n_out] and, if `record`,
        per-layer outputs and membranes [B, T, n] (lists; a pool's or flatten's membrane is None)."""
        if self.cfg.arch:
            return self._forward_layer_major(x, record)
        batch, steps = x.shape[0], x.shape[1]
        params = [(l.integer_weight(), l.integer_bias(), l.integer_threshold()) for l in self.layers]
        u = [x.new_zeros(batch, l.n_out) for l in self.layers]
        spikes_rec = [[] for _ in self.layers]
        mem_rec = [[] for _ in self.layers]
        counts = 0
        for t in range(steps):
            s = x[:, t]
            for i, (layer, (w, b, theta)) in enumerate(zip(self.layers, params)):
                s, u[i] = layer(s, u[i], w, b, theta)
                if record:
                    spikes_rec[i].append(s)
                    mem_rec[i].append(u[i])
            counts = counts + s
        if not record:
            return counts
        return counts, [torch.stack(r, 1) for r in spikes_rec], [torch.stack(r, 1) for r in mem_rec]

    def _forward_layer_major(self, x: torch.Tensor, record: bool):
        batch, steps = x.shape[0], x.shape[1]
        s = x.transpose(0, 1).reshape(steps * batch, -1)  # frames in (t, b) order: contiguous steps
        spikes_rec, mem_rec = [], []
        for layer in self.layers:
            mems = None
            if isinstance(layer, Neurons):
                w, b, theta = layer.integer_weight(), layer.integer_bias(), layer.integer_threshold()
                current = layer.current(s, w, b).view(steps, batch, -1)
                u = current.new_zeros(current.shape[1:])
                out, mems = [], []
                for t in range(steps):
                    spike, u = layer.fire(u + current[t], theta)
                    out.append(spike)
                    mems.append(u)
                s = torch.stack(out).view(steps * batch, -1)
            else:
                s = layer(s)
            if record:
                spikes_rec.append(s.view(steps, batch, -1).transpose(0, 1))
                mem_rec.append(None if mems is None else torch.stack(mems, 1))
        counts = s.view(steps, batch, -1).sum(0)
        return (counts, spikes_rec, mem_rec) if record else counts

    def exportable_reason(self) -> str | None:
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Neurons):
                continue
            if layer.fmt is None:
                return f"layer {i} is a float layer (train with quantized weights to export)"
            if layer.membrane_max is None:
                return f"layer {i} uses {layer.spec.membrane} membranes, which are not integers (a training-study format)"
        return None

    @torch.no_grad()
    def to_int_model(self, encoding: Encoding, meta: dict | None = None) -> IntModel:
        """The integer model this network computes in eval mode."""
        reason = self.exportable_reason()
        if reason:
            raise UserError(f"cannot export: {reason}")
        was_training = self.training
        self.eval()
        layers, input_max = [], 1  # the largest value a layer receives: K*K after a sum pool
        for layer in self.layers:
            if isinstance(layer, Neurons):
                layers.append(layer.to_int_layer(input_max))
                input_max = 1
            else:
                layers.append(layer.to_int_layer())
                input_max = getattr(layer, "output_max", input_max)
        self.train(was_training)
        model = IntModel(tuple(layers), self.cfg.timesteps, encoding, meta or {})
        worst = max(l.bound for l in model.neuron_layers)
        if worst >= 2**24:
            raise UserError(f"a layer's accumulator bound {worst} exceeds float32's exact range (2^24)")
        return model
