"""Median-frequency class balancing (Eigen & Fergus; ESANet's default)."""

from __future__ import annotations

import numpy as np


def median_frequency_weights(pixel_counts: np.ndarray, frame_counts: np.ndarray | None = None) -> np.ndarray:
    """Weights w_c = median(freq) / freq_c over the non-void classes.

    `pixel_counts` holds pixels per label value 0..C (index 0 = void, ignored). freq_c is the
    pixels of class c over the pixels of the frames where c occurs (`frame_counts`: pixels of
    those frames per class) or, without it, over all non-void pixels. Classes that never
    occur get weight 0 (they contribute no loss anyway)."""
    counts = np.asarray(pixel_counts, dtype=np.float64)[1:]
    denom = (np.asarray(frame_counts, dtype=np.float64)[1:] if frame_counts is not None
             else np.full_like(counts, counts.sum()))
    with np.errstate(divide="ignore", invalid="ignore"):
        freq = np.where(denom > 0, counts / denom, 0.0)
    present = freq > 0
    if not present.any():
        return np.ones_like(freq, dtype=np.float32)
    med = np.median(freq[present])
    return np.where(present, med / np.where(present, freq, 1.0), 0.0).astype(np.float32)
