"""mintaccel: low-bit spiking neural networks to verified, multiplier-less FPGA accelerators.

The public Python API (docs/api.md) is importable from here; each name loads its module on first use,
so `import mintaccel` stays free of numpy, torch and Amaranth.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_API = {
    "load_model": "mintaccel.model_export.format",
    "save_model": "mintaccel.model_export.format",
    "run": "mintaccel.sim.reference",
    "Trace": "mintaccel.sim.reference",
    "simulate": "mintaccel.sim.cycle",
    "CycleResult": "mintaccel.sim.cycle",
    "rate_encode": "mintaccel.sim.encoding",
    "IntModel": "mintaccel.core.model",
    "shipped_model_path": "mintaccel.core.shipped",
    "UserError": "mintaccel.core.errors",
}

__all__ = sorted(_API)


def __getattr__(name: str):
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'mintaccel' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
