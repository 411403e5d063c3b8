"""`edgefuse train CONFIG.yaml`: run a training config (single process or under torchrun)."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer

from edgefuse.cli.common import console


def train(
    config: Path = typer.Argument(..., help="Training config (YAML); see configs/*.yaml."),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted run in the config's out_dir."),
    out_dir: str = typer.Option(None, "--out-dir", help="Override the config's out_dir."),
    pretrained: str = typer.Option(None, "--pretrained",
                                   help="Local torchvision-named ImageNet ResNet weights (.pth / .safetensors) "
                                        "for the encoders; overrides the config's model.pretrained."),
) -> None:
    """Train a model: static baselines, CEN, modality-level or two-stage DynMM.

    DynMM stage I trains every path (random path per sample); stage II trains the gate with
    Gumbel-softmax and the resource-aware loss over the measured path costs. Multi-GPU:
    torchrun --nproc_per_node=N -m edgefuse.cli.main train CONFIG.yaml
    """
    from edgefuse.train.config import load_config
    from edgefuse.train.trainer import log_summary
    from edgefuse.train.trainer import train as run

    from dataclasses import replace

    cfg = load_config(config)
    if out_dir:
        cfg = replace(cfg, out_dir=out_dir)
    if pretrained:
        if not Path(pretrained).is_file():
            from edgefuse.errors import EdgefuseError

            raise EdgefuseError(f"--pretrained {pretrained}: no such file (give a local torchvision ResNet "
                                "state dict, e.g. resnet34-b627a593.pth; nothing is downloaded)")
        cfg = replace(cfg, model=replace(cfg.model, pretrained=pretrained))
    # The exact command, rebuilt from the parsed arguments (sys.argv is not ours when the CLI
    # is called as a function).
    args = ["edgefuse", "train", str(config)] + (["--resume"] if resume else []) + (
        ["--out-dir", out_dir] if out_dir else []) + (["--pretrained", pretrained] if pretrained else [])
    command = " ".join(shlex.quote(a) for a in args)
    result = run(cfg, resume=resume, command=command)
    console.print(log_summary(result))


def register(app: typer.Typer) -> None:
    app.command("train")(train)
