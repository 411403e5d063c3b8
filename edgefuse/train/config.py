"""Typed training configuration (YAML -> dataclasses; unknown keys are an error).

One `TrainConfig` describes a whole run: the model (registry name + overrides, or a
checkpoint to start from), the data, the optimiser, and a list of *stages* run one after
the other. Static models use one stage; fusion-level DynMM uses the paper's two (Sec. 3.4):
stage I `gate_mode: random` (every path trained uniformly), stage II `gumbel_hard` or
`gumbel_soft` with the resource-aware loss over the measured path costs.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgefuse.config import from_dict, to_dict
from edgefuse.data.transforms import TransformConfig
from edgefuse.errors import ConfigError, EdgefuseError


class OptimizerKind(str, enum.Enum):
    SGD = "sgd"        # ESANet's recipe: nesterov, momentum 0.9, wd 1e-4
    ADAMW = "adamw"


class ScheduleKind(str, enum.Enum):
    ONECYCLE = "onecycle"
    CONSTANT = "constant"


class GateMode(str, enum.Enum):
    """How a dynamic model picks paths while training (models/fusion_net.py train_forward)."""

    RANDOM = "random"            # stage I: uniform random path per sample
    GUMBEL_HARD = "gumbel_hard"  # stage II: straight-through Gumbel-softmax
    GUMBEL_SOFT = "gumbel_soft"  # stage II: every path runs, blended by soft weights
    SUPERVISED = "supervised"    # every path runs and trains; the gate regresses their losses (+ cost)
    ROUTED = "routed"            # each sample through the gate's argmax path; the network trains, the gate not
    FIXED = "fixed"              # every sample through `StageConfig.path` (static models)
    SANDWICH = "sandwich"        # stage I of weight-sharing networks: full + cheapest + random paths


class GateTarget(str, enum.Enum):
    """What a 'supervised' gate learns to predict per path and frame (train/losses.py)."""

    LOSS = "loss"      # the class-weighted cross-entropy the network trains on
    ERROR = "error"    # the pixel error (1 - pixel accuracy) of the path's prediction


class ClassWeighting(str, enum.Enum):
    MEDIAN_FREQUENCY = "median_frequency"   # ESANet: median(freq) / freq, from the train split
    NONE = "none"


@dataclass(frozen=True)
class ModelSpec:
    """`name` (registry, `edgefuse info`) with `overrides`, or `checkpoint` (a path or shipped
    weights name) to start from. Classes, input size and depth statistics default to the
    dataset's when not overridden."""

    name: str | None = None
    checkpoint: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    # Initialise `name` from another checkpoint (e.g. fusion-level DynMM from the trained
    # static ESANet whose structure is its full path: same encoders, fusions and decoder; only
    # the gate stays random). Every tensor of the checkpoint must fit (name and shape): a
    # checkpoint of another architecture is an error.
    init_from: str | None = None
    # ImageNet weights for the encoders from a *local* torchvision-named ResNet state dict
    # (.pth / .safetensors; nothing is downloaded): RGB encoders as is, depth encoders with
    # conv1 summed over the RGB channels (ESANet). Applied before init_from.
    pretrained: str | None = None
    # Modality-level DynMM, "experts first": one trained static network per expert, in the
    # experts' order (a checkpoint path or shipped weights name; null keeps that expert's
    # initialisation), loaded into `experts.k.*` (ModalityDynMM.load_experts). Applied last.
    init_experts: tuple[str | None, ...] | None = None

    def __post_init__(self) -> None:
        if (self.name is None) == (self.checkpoint is None):
            raise ConfigError("model: give exactly one of 'name' (a registered model) or "
                              "'checkpoint' (a .safetensors file or shipped weights name)")
        if self.init_experts is not None and self.checkpoint is not None:
            raise ConfigError("model: 'init_experts' initialises a new modality-level DynMM; a "
                              "'checkpoint' already has trained experts: drop one of them")
        if self.pretrained is not None and self.checkpoint is not None:
            raise ConfigError("model: 'pretrained' initialises a new model from ImageNet weights; a "
                              "'checkpoint' already has trained weights: drop one of them")


@dataclass(frozen=True)
class AugmentConfig:
    """Train-time augmentation (ESANet's recipe; edgefuse.data.transforms.TrainTransform):
    random rescale by a factor in `scale`, random crop back to the model's input size,
    horizontal flip, HSV jitter on RGB only. Depth and labels are resized nearest, so invalid
    depth (0) and void (0) stay exactly 0. The draws are a function of (seed, epoch, frame),
    so `resume` repeats them. Only the training split is augmented; evaluation never is."""

    # Output H, W. Default (None): the model's input size (from `model.overrides.input_size`,
    # the checkpoint, or the training frames, as for the model itself); given, it must equal it.
    size: tuple[int, int] | None = None
    scale: tuple[float, float] = TransformConfig.scale         # rescale range before the crop, >= 1.0
    flip: bool = TransformConfig.flip                          # random horizontal flip (p = 0.5)
    hue_deg: float = TransformConfig.hue_deg                   # hue shift drawn from +-hue_deg degrees
    saturation: tuple[float, float] = TransformConfig.saturation  # saturation scale range
    value: float = TransformConfig.value                       # brightness shift from +-value (0..255)

    def __post_init__(self) -> None:
        try:  # the transform's own checks, at parse time
            self.transform_config(self.size or TransformConfig.size)
        except ConfigError as exc:
            raise ConfigError(f"data.augment: {exc}") from None

    def transform_config(self, input_size: tuple[int, int]) -> TransformConfig:
        """The TrainTransform config for a model of `input_size` (H, W)."""
        input_size = (int(input_size[0]), int(input_size[1]))
        if self.size is not None and tuple(self.size) != input_size:
            raise ConfigError(f"data.augment.size {list(self.size)} differs from the model's input size "
                              f"{list(input_size)}; training frames must be the model's input size: "
                              "leave size out (it defaults to the model's) or set model.overrides.input_size")
        return TransformConfig(size=input_size, scale=tuple(self.scale), flip=self.flip, hue_deg=self.hue_deg,
                               saturation=tuple(self.saturation), value=self.value)


@dataclass(frozen=True)
class DataConfig:
    root: str
    train_split: str = "train"
    eval_split: str | None = "test"     # evaluated at the end of every stage (None: never)
    max_frames: int | None = None       # use only the first N training frames (quick runs)
    workers: int = 0                    # DataLoader worker processes
    augment: AugmentConfig | None = None  # train-split augmentation (None: frames as stored)


@dataclass(frozen=True)
class OptimConfig:
    kind: OptimizerKind = OptimizerKind.SGD
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    schedule: ScheduleKind = ScheduleKind.ONECYCLE
    pct_start: float = 0.1              # OneCycle warm-up share
    div_factor: float = 25.0
    final_div_factor: float = 1e4

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ConfigError(f"optim.lr must be > 0, got {self.lr}")
        if not 0.0 < self.pct_start < 1.0:
            raise ConfigError(f"optim.pct_start must be in (0, 1), got {self.pct_start}")


@dataclass(frozen=True)
class StageConfig:
    """One training stage. Each stage has its own optimiser and schedule (a fresh OneCycle)."""

    name: str = "train"
    epochs: int = 1
    gate_mode: GateMode = GateMode.FIXED
    path: int = 0                       # gate_mode 'fixed': the path every sample takes
    lr: float | None = None             # default: optim.lr
    gate_lr: float | None = None        # the gate's own rate (default: lr)
    tau_start: float = 1.0              # Gumbel temperature, annealed exponentially per step
    tau_end: float = 1.0
    resource_lambda: float = 0.0        # DynMM eq. 4 weight on sum_k g_k C_k / max C
    budget: float | None = None         # penalise only mean cost above this share of max C
    cen_l1: float = 0.0                 # CEN l1 on the designated BN gammas (paper 5e-3, code 2e-4)
    freeze_experts: bool = False        # modality-level DynMM stage II: train the gate only
    freeze_network: bool = False        # any DynMM: train the gate only (network frozen, BN in eval)
    gate_temperature: float | None = None  # 'supervised': None regresses path scores, T: soft target at T
    gate_target: GateTarget = GateTarget.LOSS  # 'supervised': the per-path score the gate learns
    # 'sandwich' (slimmable networks' sandwich rule): each step the full path, the cheapest and
    # `sandwich_random` other random paths, on the whole batch, gradients summed. `distill`
    # (in-place distillation): the sub-paths learn the full path's soft predictions (detached)
    # and only the full path learns the labels; false: every path learns the labels.
    sandwich_random: int = 1
    distill: bool = True
    # After the stage's epochs, "precise BN" (once-for-all, BigNAS): every path's BatchNorm set
    # of a per_path_bn model re-estimated from this many training frames as stored (no
    # augmentation, no gradients; 0: off). A stage of 0 epochs does only this.
    precise_bn_frames: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 0:
            raise ConfigError(f"stage {self.name!r}: epochs must be >= 0")
        if self.gate_temperature is not None and self.gate_temperature <= 0:
            raise ConfigError(f"stage {self.name!r}: gate_temperature must be > 0 (or null: regression)")
        if self.tau_start <= 0 or self.tau_end <= 0:
            raise ConfigError(f"stage {self.name!r}: Gumbel temperatures must be > 0")
        if self.resource_lambda < 0 or self.cen_l1 < 0:
            raise ConfigError(f"stage {self.name!r}: loss weights must be >= 0")
        if self.precise_bn_frames < 0:
            raise ConfigError(f"stage {self.name!r}: precise_bn_frames must be >= 0 (0: off), "
                              f"got {self.precise_bn_frames}")
        if self.sandwich_random < 0:
            raise ConfigError(f"stage {self.name!r}: sandwich_random must be >= 0, got {self.sandwich_random}")
        if self.budget is not None and not 0.0 < self.budget <= 1.0:
            raise ConfigError(f"stage {self.name!r}: budget is a share of the most expensive "
                              f"path's MAdds, in (0, 1]; got {self.budget}")


@dataclass(frozen=True)
class TrainConfig:
    model: ModelSpec
    data: DataConfig
    out_dir: str
    stages: tuple[StageConfig, ...] = (StageConfig(),)
    optim: OptimConfig = field(default_factory=OptimConfig)
    batch_size: int = 8                 # per process (DDP: per rank)
    class_weights: ClassWeighting = ClassWeighting.MEDIAN_FREQUENCY
    seed: int = 0
    threads: int | None = None          # torch.set_num_threads (CPU training)
    progress: bool = True               # rich progress bars

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if not self.stages:
            raise ConfigError("stages: give at least one stage")
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ConfigError(f"stage names must be distinct, got {names}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return from_dict(cls, data, where="train config")

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @property
    def total_epochs(self) -> int:
        return sum(s.epochs for s in self.stages)


def load_config(path: str | Path) -> TrainConfig:
    """Read a YAML training config."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise EdgefuseError(f"training config {path} not found (see configs/*.yaml for examples)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return TrainConfig.from_dict(data)
