"""`mintaccel train --arch`: a network written as comma-separated tokens, e.g. `c8k3,p2,c16k3,p2,f10`.

    c<C>k<K>[s<S>][p<P>]  conv2d: C output channels, K x K kernel, stride S (1 or 2, default 1),
                          zero padding P (0..K-1, default K//2: "same" for odd K)
    p<K>[s<S>]            max pool (OR of spikes) K x K, stride S (default K)
    s<K>[s<S>]            sum pool (count of spikes) K x K, stride S (default K); an average pool trains
                          as a sum pool (the next layer's learned scale absorbs the 1/K^2)
    f<N>                  dense layer of N neurons (a flatten is inserted before the first one after a map)

The last token is `f<classes>`. docs/arithmetic.md section 7 says what each layer computes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mintaccel.core.conv import CHANNELS_MAX, KERNEL_SIZES, POOL_SIZES, STRIDES, Shape, out_side
from mintaccel.core.errors import UserError
from mintaccel.core.model import LAYER_SIZE_MAX

#: The conv default of each data set (`--arch` without a value): the networks tuned for 2/2 bits; their
#: whole recipes (T, threshold, float init) are in the README's "The shipped model" section.
DEFAULTS = {"digits": "c32k3,p2,c64k3,p2,f10", "mnist": "c16k5s2p2,c32k3,p2,f10"}
GRAMMAR = "c<C>k<K>[s<S>][p<P>], p<K>[s<S>], s<K>[s<S>] or f<N>"

_CONV = re.compile(r"c(\d+)k(\d+)(?:s(\d+))?(?:p(\d+))?")
_POOL = re.compile(r"([ps])(\d+)(?:s(\d+))?")
_DENSE = re.compile(r"f(\d+)")


@dataclass(frozen=True)
class Conv:
    """A conv2d layer of LIF neurons."""

    channels: int
    """Output channels."""
    kernel: int
    """Kernel side K in positions."""
    stride: int = 1
    """Stride in positions (1 or 2)."""
    padding: int = 0
    """Zero padding in positions on every side (0..K-1)."""

    def __str__(self):
        return f"c{self.channels}k{self.kernel}" + (f"s{self.stride}" if self.stride != 1 else "") + f"p{self.padding}"


@dataclass(frozen=True)
class Pool:
    """A pool on spikes, no neurons."""

    op: str
    """`max` (OR of the window) or `sum` (count of spikes in it)."""
    kernel: int
    """Window side K in positions."""
    stride: int = 0
    """Step between windows in positions; 0 means `kernel`."""

    def __str__(self):
        stride = f"s{self.stride}" if self.stride not in (0, self.kernel) else ""
        return f"{'p' if self.op == 'max' else 's'}{self.kernel}{stride}"


@dataclass(frozen=True)
class Dense:
    """A dense layer of LIF neurons (after a flatten when it follows a map)."""

    neurons: int
    """Number of neurons."""

    def __str__(self):
        return f"f{self.neurons}"


Token = Conv | Pool | Dense


def _int(text: str | None, default: int) -> int:
    return default if text is None else int(text)


def _in(value: int, allowed, what: str, token: str) -> int:
    if value not in allowed:
        raise UserError(f"--arch token {token!r}: {what} must be in {allowed[0]}..{allowed[-1]}, not {value}")
    return value


def parse_token(token: str) -> Token:
    """One token, checked against the ranges of docs/arithmetic.md section 7."""
    if m := _CONV.fullmatch(token):
        kernel = _in(int(m[2]), KERNEL_SIZES, "kernel", token)
        stride = _int(m[3], 1)
        if stride not in STRIDES:
            raise UserError(f"--arch token {token!r}: conv stride must be 1 or 2, not {stride}")
        return Conv(_in(int(m[1]), range(1, CHANNELS_MAX + 1), "channels", token), kernel, stride,
                    _in(_int(m[4], kernel // 2), range(kernel), "padding", token))
    if m := _POOL.fullmatch(token):
        kernel = _in(int(m[2]), POOL_SIZES, "pool window", token)
        stride = _in(_int(m[3], kernel), POOL_SIZES, "pool stride", token)
        return Pool("max" if m[1] == "p" else "sum", kernel, 0 if stride == kernel else stride)
    if m := _DENSE.fullmatch(token):
        return Dense(_in(int(m[1]), range(1, LAYER_SIZE_MAX + 1), "neurons", token))
    raise UserError(f"--arch token {token!r} is not one of {GRAMMAR}")


def parse(text: str) -> tuple[Token, ...]:
    """`c8k3,p2,f10` -> (Conv(8, 3, 1, 1), Pool('max', 2), Dense(10)); one-line errors for bad tokens."""
    tokens = tuple(parse_token(t.strip()) for t in text.split(","))
    if not isinstance(tokens[-1], Dense):
        raise UserError(f"--arch {text!r} must end with a dense layer f<classes>, not {tokens[-1]}")
    for a, b in zip(tokens, tokens[1:]):
        if isinstance(a, Pool) and isinstance(b, Pool):
            raise UserError(f"--arch {text!r}: {b} follows the pool {a} (a pool's input must be spikes)")
    seen_dense = False
    for t in tokens:
        if seen_dense and not isinstance(t, Dense):
            raise UserError(f"--arch {text!r}: {t} follows a dense layer (maps come before the dense layers)")
        seen_dense = seen_dense or isinstance(t, Dense)
    return tokens


def canonical(text: str) -> str:
    """The explicit spelling of an architecture (every conv's padding written out)."""
    return ",".join(str(t) for t in parse(text))


def neuron_layers(tokens: tuple[Token, ...]) -> int:
    """How many layers have neurons (conv and dense): one weight/membrane format each."""
    return sum(not isinstance(t, Pool) for t in tokens)


def plan(tokens: tuple[Token, ...], in_shape: Shape, n_classes: int) -> list[tuple[Token | str, Shape | int, Shape | int]]:
    """(layer, input shape, output shape) in order, with `"flatten"` entries inserted; a map is (C, H, W),
    a vector its length. One-line errors for a geometry docs/arithmetic.md refuses."""
    out, shape = [], tuple(in_shape)
    text = ",".join(map(str, tokens))
    for i, t in enumerate(tokens):
        where = f"--arch {text!r}: token {i + 1} ({t}) on a {'x'.join(map(str, shape)) if isinstance(shape, tuple) else shape} input"
        if isinstance(t, Dense):
            if isinstance(shape, tuple):
                out.append(("flatten", shape, shape[0] * shape[1] * shape[2]))
                shape = shape[0] * shape[1] * shape[2]
            out.append((t, shape, t.neurons))
            shape = t.neurons
            continue
        _, h, w = shape
        if isinstance(t, Conv):
            if t.kernel > min(h, w) + 2 * t.padding:
                raise UserError(f"{where}: the kernel is larger than the padded input")
            new = (t.channels, out_side(h, t.kernel, t.stride, t.padding), out_side(w, t.kernel, t.stride, t.padding))
        else:
            if t.kernel > min(h, w):
                raise UserError(f"{where}: the pool window is larger than its input")
            s = t.stride or t.kernel
            new = (shape[0], out_side(h, t.kernel, s, 0), out_side(w, t.kernel, s, 0))
        out.append((t, shape, new))
        shape = new
    if shape != n_classes:
        raise UserError(f"--arch {text!r} ends in f{shape}, but the data set has {n_classes} classes")
    return out
