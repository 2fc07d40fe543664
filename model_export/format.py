"""Read, write and validate the integer model file (docs/model-format.md).

The file is an `.npz` archive (a zip of `.npy` arrays): a `manifest` array holding UTF-8 JSON, and
one integer array per weight matrix and bias vector. numpy and json read it without mintaccel.
Writing is deterministic (fixed zip timestamps), so the same model always gives the same bytes.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from mintaccel.core.files import atomic_open
from mintaccel.core.errors import UserError
from mintaccel.core.model import DenseLayer, Encoding, IntModel, Leak, ModelError, WeightFormat

FORMAT_NAME = "mintaccel-model"
FORMAT_VERSION = 1
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def to_manifest(model: IntModel) -> dict:
    layers = []
    for i, layer in enumerate(model.layers):
        layers.append({
            "kind": "dense",
            "inputs": layer.n_in,
            "outputs": layer.n_out,
            "weight": {"scheme": layer.weight_format.scheme, "bits": layer.weight_format.bits,
                       "array": f"layer{i}.weight"},
            "membrane": {"bits": layer.membrane_bits},
            "threshold": layer.threshold,
            "reset": layer.reset,
            "leak": {"kind": layer.leak.kind, "k": layer.leak.k},
            "bias": None if layer.bias is None else {"bits": layer.bias_bits, "array": f"layer{i}.bias"},
            "scale": layer.scale,
        })
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "timesteps": model.timesteps,
        "input": {"size": model.n_inputs,
                  "encoding": {"kind": model.encoding.kind, "levels": model.encoding.levels}},
        "readout": {"kind": "spike_count", "tie": "lowest_index"},
        "layers": layers,
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


def from_manifest(manifest: dict, arrays: dict) -> IntModel:
    """Build a validated `IntModel` from a parsed manifest and its arrays."""
    name = _get(manifest, "format", str, "manifest")
    if name != FORMAT_NAME:
        raise ModelError(f"format is {name!r}, expected {FORMAT_NAME!r}")
    version = _get(manifest, "version", int, "manifest")
    if version != FORMAT_VERSION:
        raise ModelError(f"unsupported format version {version} (this mintaccel reads version {FORMAT_VERSION})")
    timesteps = _get(manifest, "timesteps", int, "manifest")
    inp = _get(manifest, "input", dict, "manifest")
    size = _get(inp, "size", int, "input")
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
        if kind != "dense":
            raise ModelError(f"{where}: unsupported layer kind {kind!r} (supported: dense)")
        n_in = _get(spec, "inputs", int, where)
        n_out = _get(spec, "outputs", int, where)
        wspec = _get(spec, "weight", dict, where)
        fmt = WeightFormat(_get(wspec, "scheme", str, f"{where}.weight"), _get(wspec, "bits", int, f"{where}.weight"))
        weight = _array(arrays, _get(wspec, "array", str, f"{where}.weight"), (n_out, n_in), f"{where}.weight")
        lspec = _get(spec, "leak", dict, where)
        bspec = spec.get("bias") if isinstance(spec, dict) else None
        bias, bias_bits = None, 0
        if bspec is not None:
            bias_bits = _get(bspec, "bits", int, f"{where}.bias")
            bias = _array(arrays, _get(bspec, "array", str, f"{where}.bias"), (n_out,), f"{where}.bias")
        scale = spec.get("scale")
        if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float))):
            raise ModelError(f"field '{where}.scale' must be a number or null")
        try:
            layers.append(DenseLayer(
                weight=weight, weight_format=fmt,
                membrane_bits=_get(_get(spec, "membrane", dict, where), "bits", int, f"{where}.membrane"),
                threshold=_get(spec, "threshold", int, where),
                reset=_get(spec, "reset", str, where),
                leak=Leak(_get(lspec, "kind", str, f"{where}.leak"), _get(lspec, "k", int, f"{where}.leak")),
                bias=bias, bias_bits=bias_bits, scale=scale))
        except ModelError as e:
            raise ModelError(f"{where}: {e}") from None
    if size != layers[0].n_in:
        raise ModelError(f"input.size is {size} but layer 0 has {layers[0].n_in} inputs")
    meta = manifest.get("meta", {})
    if not isinstance(meta, dict):
        raise ModelError("'meta' must be a JSON object")
    return IntModel(tuple(layers), timesteps, encoding, meta)
