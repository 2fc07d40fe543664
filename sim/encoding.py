"""Deterministic input encoding (docs/arithmetic.md section 4): pixels -> spike trains."""

from __future__ import annotations

import numpy as np

from mintaccel.core.errors import UserError
from mintaccel.core.model import TIMESTEPS_MAX


def rate_encode(pixels: np.ndarray, timesteps: int, levels: int) -> np.ndarray:
    """Delta-sigma rate code: x[t] = floor((t+1) p / P) - floor(t p / P).

    pixels: integers in 0..levels, shape [batch, inputs]. Returns uint8 [batch, T, inputs].
    """
    t = timesteps
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 1 <= t <= TIMESTEPS_MAX:
        raise UserError(f"timesteps must be an integer in 1..{TIMESTEPS_MAX}, not {timesteps!r}")
    p = np.asarray(pixels)
    if p.ndim != 2:
        raise UserError(f"pixels must be shaped [batch, inputs], got {p.shape}")
    if not np.issubdtype(p.dtype, np.integer):
        raise UserError(f"pixels must be integers 0..{levels}, got dtype {p.dtype}")
    if p.size and (p.min() < 0 or p.max() > levels):
        raise UserError(f"pixels must lie in 0..{levels}, found {p.min()}..{p.max()}")
    p = p.astype(np.int64)[:, None, :]
    t = np.arange(timesteps + 1, dtype=np.int64)[None, :, None]
    cumulative = (t * p) // levels
    return np.diff(cumulative, axis=1).astype(np.uint8)
