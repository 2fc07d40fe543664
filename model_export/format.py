"""Read, write and validate the integer model file (docs/model-format.md).

The file is an `.npz` archive (a zip of `.npy` arrays): a `manifest` array holding UTF-8 JSON, and
one integer array per weight matrix (or kernel) and bias vector. numpy and json read it without
mintaccel. Writing is deterministic (fixed zip timestamps), so the same model always gives the same
bytes. Version 1 holds dense layers only; version 2 adds conv2d, pool and flatten and is written only
for a model that has one of them, so a dense-only model keeps its version-1 bytes.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from mintaccel.core.conv import Conv2dLayer, FlattenLayer, PoolLayer
from mintaccel.core.files import atomic_open
from mintaccel.core.errors import UserError
from mintaccel.core.model import DenseLayer, Encoding, IntModel, Leak, ModelError, NeuronLayer, WeightFormat

FORMAT_NAME = "mintaccel-model"
FORMAT_VERSIONS = (1, 2)
"""The versions this mintaccel reads: 1 (dense layers only) and 2 (adds conv2d, pool, flatten)."""
FORMAT_VERSION = FORMAT_VERSIONS[-1]
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _neuron_fields(layer: NeuronLayer, i: int) -> dict:
    """The fields every neuron layer (dense, conv2d) writes after its geometry, in the file's order."""
    return {
        "weight": {"scheme": layer.weight_format.scheme, "bits": layer.weight_format.bits,
                   "array": f"layer{i}.weight"},
        "membrane": {"bits": layer.membrane_bits},
        "threshold": layer.threshold,
        "reset": layer.reset,
        "leak": {"kind": layer.leak.kind, "k": layer.leak.k},
        "bias": None if layer.bias is None else {"bits": layer.bias_bits, "array": f"layer{i}.bias"},
        "scale": layer.scale,
    }


def _write_dense(layer: DenseLayer, i: int) -> dict:
    return {"kind": "dense", "inputs": layer.n_in, "outputs": layer.n_out, **_neuron_fields(layer, i)}


def _write_conv2d(layer: Conv2dLayer, i: int) -> dict:
    return {"kind": "conv2d", "in_shape": list(layer.in_shape), "out_channels": layer.out_channels,
            "kernel": layer.kernel, "stride": layer.stride, "padding": layer.padding, **_neuron_fields(layer, i)}


def _write_pool(layer: PoolLayer, i: int) -> dict:
    return {"kind": "pool", "op": layer.op, "in_shape": list(layer.in_shape), "kernel": layer.kernel,
            "stride": layer.stride}


def _write_flatten(layer: FlattenLayer, i: int) -> dict:
    return {"kind": "flatten", "in_shape": list(layer.in_shape)}


_WRITERS = {"dense": _write_dense, "conv2d": _write_conv2d, "pool": _write_pool, "flatten": _write_flatten}


def file_version(model: IntModel) -> int:
    """1 for a dense-only model (its file is exactly what version 1 wrote), 2 otherwise."""
    return 1 if model.dense_only else 2


def to_manifest(model: IntModel) -> dict:
    version = file_version(model)
    inp = {"size": model.n_inputs}
    if version >= 2:
        inp["shape"] = list(model.input_shape)
    inp["encoding"] = {"kind": model.encoding.kind, "levels": model.encoding.levels}
    return {
        "format": FORMAT_NAME,
        "version": version,
        "timesteps": model.timesteps,
        "input": inp,
        "readout": {"kind": "spike_count", "tie": "lowest_index"},
        "layers": [_WRITERS[layer.kind](layer, i) for i, layer in enumerate(model.layers)],
        "meta": model.meta,
    }


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def save_model(model: IntModel, path: str | Path) -> None:
    """Write `model` to `path` atomically and deterministically."""
    arrays = {"manifest": np.frombuffer(json.dumps(to_manifest(model), indent=1).encode(), np.uint8)}
    for i, layer in enumerate(model.layers):
        if not isinstance(layer, NeuronLayer):
            continue  # pools and flatten store no array
        arrays[f"layer{i}.weight"] = layer.weight.astype(np.int8)
        if layer.bias is not None:
            arrays[f"layer{i}.bias"] = layer.bias.astype(np.int16)
    with atomic_open(path, "wb") as f:
        with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
            for name, array in arrays.items():
                info = zipfile.ZipInfo(name + ".npy", date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, _npy_bytes(array))


def load_model(path: str | Path) -> IntModel:
    """Read and validate a model file; any defect raises `UserError` naming the file and the problem."""
    path = Path(path)
    try:
        return _load(path)
    except ModelError as e:
        raise UserError(f"{path}: invalid model: {e}") from None


def _load(path: Path) -> IntModel:
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not a model file (.npz)")
    if not path.is_file():
        raise UserError(f"{path}: no such model file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as e:
        raise UserError(f"{path}: not a readable mintaccel model file (truncated or not an .npz archive: {e})") from None
    if "manifest" not in arrays:
        raise ModelError("no 'manifest' entry")
    try:
        manifest = json.loads(arrays["manifest"].tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(f"manifest is not valid JSON ({e})") from None
    return from_manifest(manifest, arrays)


def _get(d: dict, key: str, kind, where: str):
    if not isinstance(d, dict):
        raise ModelError(f"{where} must be a JSON object")
    if key not in d:
        raise ModelError(f"missing field '{where}.{key}'")
    value = d[key]
    ok = isinstance(value, kind) and not (kind in (int, (int, float)) and isinstance(value, bool))
    if not ok:
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise ModelError(f"field '{where}.{key}' must be {names}, not {type(value).__name__}")
    return value


def _array(arrays: dict, name: str, shape: tuple, where: str) -> np.ndarray:
    if name not in arrays:
        raise ModelError(f"{where} refers to array '{name}', which the file does not hold")
    a = arrays[name]
    if not np.issubdtype(a.dtype, np.integer):
        raise ModelError(f"array '{name}' must hold integers, not {a.dtype}")
    if a.shape != shape:
        raise ModelError(f"array '{name}' has shape {list(a.shape)}, expected {list(shape)}")
    return a


def _shape(spec: dict, key: str, where: str) -> tuple[int, int, int]:
    """A [C, H, W] field: three integers (their ranges are checked by the layer)."""
    value = _get(spec, key, list, where)
    if len(value) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ModelError(f"field '{where}.{key}' must be [channels, height, width] (three integers), not {value}")
    return tuple(value)


def _neuron_args(spec: dict, arrays: dict, where: str, weight_shape) -> dict:
    """The fields dense and conv2d share; `weight_shape(spec)` is the array shape the geometry implies."""
    wspec = _get(spec, "weight", dict, where)
    fmt = WeightFormat(_get(wspec, "scheme", str, f"{where}.weight"), _get(wspec, "bits", int, f"{where}.weight"))
    shape = weight_shape(spec)
    weight = _array(arrays, _get(wspec, "array", str, f"{where}.weight"), shape, f"{where}.weight")
    lspec = _get(spec, "leak", dict, where)
    bspec = spec.get("bias")
    bias, bias_bits = None, 0
    if bspec is not None:
        bias_bits = _get(bspec, "bits", int, f"{where}.bias")
        bias = _array(arrays, _get(bspec, "array", str, f"{where}.bias"), shape[:1], f"{where}.bias")
    scale = spec.get("scale")
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float))):
        raise ModelError(f"field '{where}.scale' must be a number or null")
    return dict(weight=weight, weight_format=fmt,
                membrane_bits=_get(_get(spec, "membrane", dict, where), "bits", int, f"{where}.membrane"),
                threshold=_get(spec, "threshold", int, where),
                reset=_get(spec, "reset", str, where),
                leak=Leak(_get(lspec, "kind", str, f"{where}.leak"), _get(lspec, "k", int, f"{where}.leak")),
                bias=bias, bias_bits=bias_bits, scale=scale)


def _read_dense(spec: dict, arrays: dict, where: str) -> DenseLayer:
    shape = lambda s: (_get(s, "outputs", int, where), _get(s, "inputs", int, where))  # noqa: E731
    return DenseLayer(**_neuron_args(spec, arrays, where, shape))


def _read_conv2d(spec: dict, arrays: dict, where: str) -> Conv2dLayer:
    in_shape = _shape(spec, "in_shape", where)
    kernel = _get(spec, "kernel", int, where)
    shape = lambda s: (_get(s, "out_channels", int, where), in_shape[0], kernel, kernel)  # noqa: E731
    return Conv2dLayer(**_neuron_args(spec, arrays, where, shape), in_shape=in_shape,
                       stride=_get(spec, "stride", int, where), padding=_get(spec, "padding", int, where))


def _read_pool(spec: dict, arrays: dict, where: str) -> PoolLayer:
    return PoolLayer(_get(spec, "op", str, where), _shape(spec, "in_shape", where), _get(spec, "kernel", int, where),
                     _get(spec, "stride", int, where))


def _read_flatten(spec: dict, arrays: dict, where: str) -> FlattenLayer:
    return FlattenLayer(_shape(spec, "in_shape", where))


_READERS = {"dense": _read_dense, "conv2d": _read_conv2d, "pool": _read_pool, "flatten": _read_flatten}
_KINDS = {1: ("dense",), 2: tuple(_READERS)}
"""Layer kinds each file version may hold."""


def from_manifest(manifest: dict, arrays: dict) -> IntModel:
    """Build a validated `IntModel` from a parsed manifest and its arrays."""
    name = _get(manifest, "format", str, "manifest")
    if name != FORMAT_NAME:
        raise ModelError(f"format is {name!r}, expected {FORMAT_NAME!r}")
    version = _get(manifest, "version", int, "manifest")
    if version not in FORMAT_VERSIONS:
        raise ModelError(f"unsupported format version {version} (this mintaccel reads versions "
                         f"{', '.join(map(str, FORMAT_VERSIONS))})")
    timesteps = _get(manifest, "timesteps", int, "manifest")
    inp = _get(manifest, "input", dict, "manifest")
    size = _get(inp, "size", int, "input")
    shape = _get(inp, "shape", list, "input") if version >= 2 else None
    enc = _get(inp, "encoding", dict, "input")
    encoding = Encoding(_get(enc, "kind", str, "input.encoding"), _get(enc, "levels", int, "input.encoding"))
    readout = _get(manifest, "readout", dict, "manifest")
    if readout != {"kind": "spike_count", "tie": "lowest_index"}:
        raise ModelError(f"unsupported readout {readout} (supported: spike_count, tie lowest_index)")
    specs = _get(manifest, "layers", list, "manifest")
    if not specs:
        raise ModelError("'layers' is empty")
    layers = []
    for i, spec in enumerate(specs):
        where = f"layers[{i}]"
        kind = _get(spec, "kind", str, where)
        if kind not in _KINDS[version]:
            needs = " (conv2d, pool and flatten need format version 2)" if kind in _READERS else ""
            raise ModelError(f"{where}: unsupported layer kind {kind!r} in version {version} "
                             f"(supported: {', '.join(_KINDS[version])}){needs}")
        try:
            layers.append(_READERS[kind](spec, arrays, where))
        except ModelError as e:  # name the layer once, whichever check refused it
            raise ModelError(str(e) if str(e).startswith(where) or f"'{where}" in str(e)
                             else f"{where} ({kind}): {e}") from None
    if size != layers[0].n_in:
        raise ModelError(f"input.size is {size} but layer 0 has {layers[0].n_in} inputs")
    first_shape = list(getattr(layers[0], "in_shape", (layers[0].n_in,)))
    if shape is not None and shape != first_shape:
        raise ModelError(f"input.shape is {shape} but layer 0 ({layers[0].kind}) takes {first_shape}")
    meta = manifest.get("meta", {})
    if not isinstance(meta, dict):
        raise ModelError("'meta' must be a JSON object")
    return IntModel(tuple(layers), timesteps, encoding, meta)
