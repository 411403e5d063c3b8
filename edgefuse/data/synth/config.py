"""Typed configuration of the synthetic benchmark (unknown keys rejected by edgefuse.config.from_dict)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SynthConfig:
    """Knobs of the generator. The defaults define the shipped benchmark: change them and the
    data (and any model trained on it) changes too."""

    hard_fraction: float = 0.5        # share of hard frames
    same_texture_prob: float = 0.85   # hard frame: furniture-like classes share one texture
    room_texture_prob: float = 0.5    # ... and walls, floor and ceiling wear it too
    hard_light_prob: float = 0.75     # hard frame: dark, flat or low-contrast lighting
    shadows: bool = True              # cast shadow rays towards the ceiling light
    min_range_m: float = 0.28         # D435 minimum depth at 848x480
    max_range_m: float = 6.5          # no return beyond this; dropout ramps up from 0.75 of it

    def __post_init__(self) -> None:
        for name in ("hard_fraction", "same_texture_prob", "room_texture_prob", "hard_light_prob"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"SynthConfig.{name} must be in [0, 1], got {v}")
        if not 0.0 < self.min_range_m < self.max_range_m:
            raise ValueError("SynthConfig needs 0 < min_range_m < max_range_m")
