"""Files that ship inside the package (read through importlib.resources, never the source checkout)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SHIPPED_MODEL = "digits-w2m2.npz"


def shipped_model_path(name: str = SHIPPED_MODEL) -> Path:
    """The shipped model file `name` (default: the digits MLP the demo runs)."""
    return Path(str(resources.files("mintaccel") / "models" / name))
