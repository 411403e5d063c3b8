"""Path sets: which fusion cells fuse depth into RGB, per gating choice (docs/architecture.md "The path").

A path is a decision vector over the F fusion cells. Progressive fusion (the default, and
the official DynMM code's 5-way gate) has F+1 paths: path k fuses in cells 1..k and never
after, so depth stages k+1..F are not computed. Any subset of the 2^F vectors is valid.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from edgefuse.errors import ConfigError

Decision = tuple[bool, ...]


@dataclass(frozen=True)
class PathSet:
    decisions: tuple[Decision, ...]

    def __post_init__(self) -> None:
        if not self.decisions:
            raise ConfigError("a path set needs at least one path")
        widths = {len(d) for d in self.decisions}
        if len(widths) != 1:
            raise ConfigError(f"all decision vectors must have the same length, got {sorted(widths)}")
        if len(set(self.decisions)) != len(self.decisions):
            raise ConfigError(f"duplicate decision vectors in path set {self.as_lists()}")

    # --- constructors -------------------------------------------------------------
    @classmethod
    def progressive(cls, cells: int = 4) -> PathSet:
        return cls(tuple(tuple(i < k for i in range(cells)) for k in range(cells + 1)))

    @classmethod
    def exhaustive(cls, cells: int = 4) -> PathSet:
        return cls(tuple(tuple(bool(b) for b in bits)
                         for bits in itertools.product((0, 1), repeat=cells)))

    @classmethod
    def full(cls, cells: int = 4) -> PathSet:
        """The static fusion network: every cell fuses (ESANet)."""
        return cls((tuple(True for _ in range(cells)),))

    @classmethod
    def none(cls, cells: int = 4) -> PathSet:
        """A single path that never fuses (single-encoder baselines)."""
        return cls((tuple(False for _ in range(cells)),))

    @classmethod
    def parse(cls, spec: str | list, cells: int = 4) -> PathSet:
        """'progressive' | 'exhaustive' | 'full' | a list of decision vectors (0/1 or bools),
        or a comma list of bit strings such as '0000,1000,1111'."""
        named = {"progressive": cls.progressive, "exhaustive": cls.exhaustive,
                 "all": cls.exhaustive, "full": cls.full, "none": cls.none}
        if isinstance(spec, str):
            if spec in named:
                return named[spec](cells)
            items: list = [s.strip() for s in spec.split(",") if s.strip()]
        else:
            items = list(spec)
        decisions = []
        for item in items:
            if isinstance(item, str):
                if set(item) - {"0", "1"} or len(item) != cells:
                    raise ConfigError(
                        f"path {item!r} is not a {cells}-bit decision string such as '1100'; "
                        f"or use one of {sorted(named)}")
                decisions.append(tuple(c == "1" for c in item))
            else:
                vec = tuple(bool(v) for v in item)
                if len(vec) != cells:
                    raise ConfigError(f"path {list(item)} must have {cells} entries (one per fusion cell)")
                decisions.append(vec)
        return cls(tuple(decisions))

    # --- queries --------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.decisions)

    def __getitem__(self, k: int) -> Decision:
        return self.decisions[k]

    def __iter__(self):
        return iter(self.decisions)

    @property
    def cells(self) -> int:
        return len(self.decisions[0])

    def as_lists(self) -> list[list[bool]]:
        return [list(d) for d in self.decisions]

    @staticmethod
    def depth_stages(decision: Decision) -> int:
        """Number of depth encoder stages a path must compute: up to its last fused cell."""
        return max((i + 1 for i, fused in enumerate(decision) if fused), default=0)

    def fallback_for(self, decision: Decision, available: list[int]) -> int:
        """Index (into this set) of the cheapest available path that fuses at least where
        `decision` fuses; used when only some paths are exported (issue 4)."""
        candidates = [k for k in available
                      if all(a or not b for a, b in zip(self.decisions[k], decision))]
        if not candidates:
            raise ConfigError(f"no exported path fuses at least as much as {list(decision)}")
        return min(candidates, key=lambda k: (sum(self.decisions[k]), self.depth_stages(self.decisions[k]), k))
