"""The synthetic RGB-D benchmark: procedural rooms, a D435-like camera, ray casting.

`SceneRenderer(seed, size).render(index) -> SynthFrame` and `write_dataset(...)`.
Importing this package is light; open3d loads when a SceneRenderer is built.
"""

from edgefuse.data.synth.config import SynthConfig
from edgefuse.data.synth.render import SceneRenderer, SynthFrame
from edgefuse.data.synth.writer import write_dataset

__all__ = ["SceneRenderer", "SynthFrame", "SynthConfig", "write_dataset"]
