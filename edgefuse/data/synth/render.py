"""SceneRenderer: one procedural room per index, ray cast with Open3D on the CPU.

Open3D's RaycastingScene (Embree) gives, per pixel, the hit distance, triangle id and
face normal; everything else (textures, lambertian + ambient shading with shadows, camera
exposure and noise, the depth sensor) is numpy. Each frame draws from its own
`np.random.default_rng([seed, index])` stream, so frames are reproducible one by one and
in any order (parallel writers give identical bytes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgefuse.data.synth.camera import camera_rays, expose, intrinsics_for
from edgefuse.data.synth.config import SynthConfig
from edgefuse.data.synth.scene import Scene, generate_scene
from edgefuse.data.synth.sensor import simulate_depth
from edgefuse.errors import EdgefuseError, require


@dataclass
class SynthFrame:
    rgb: np.ndarray        # H x W x 3 uint8
    depth: np.ndarray      # H x W uint16 mm, 0 = no measurement
    labels: np.ndarray     # H x W uint8, 0 = void, 1..13 = NYU13 index + 1
    intrinsics: dict[str, float]
    meta: dict[str, Any]   # lighting, light_level, hard, hard_factors, ...


class SceneRenderer:
    """Render frame `index` of the benchmark drawn from `seed` (deterministic in both)."""

    def __init__(self, seed: int, size: tuple[int, int] = (192, 256), config: SynthConfig | None = None,
                 threads: int = 0) -> None:
        if seed < 0:
            raise EdgefuseError(f"seed must be >= 0, got {seed}")
        h, w = size
        if h < 8 or w < 8:
            raise EdgefuseError(f"image size {h}x{w} is too small; use at least 8x8 (e.g. 192x256)")
        self.o3d = require("open3d", "synth", "the synthetic benchmark ray casts with Open3D")
        self.seed = int(seed)
        self.size = (int(h), int(w))
        self.config = config or SynthConfig()
        self.threads = threads  # Open3D ray-casting threads (0 = all cores)
        self.intrinsics = intrinsics_for(self.size)

    def scene(self, index: int) -> tuple[Scene, np.random.Generator]:
        """The room of frame `index` and the random stream the rest of its frame draws from."""
        rng = np.random.default_rng([self.seed, int(index)])
        return generate_scene(rng, self.config), rng

    def true_depth(self, index: int, cam_rot: np.ndarray | None = None, cam_pos: np.ndarray | None = None,
                   intrinsics: dict[str, float] | None = None) -> np.ndarray:
        """Noise-free z-depth (uint16 mm, 0 = no surface) of frame `index`'s room seen from any pose.

        The default pose and intrinsics are the frame's own; another pose (`cam_rot`: 3x3
        world-from-camera, OpenCV axes; `cam_pos`: metres) and other intrinsics render the
        same room from a second camera: the ground truth for depth registration (issue 11).
        Pixel centres sit at (u + 0.5, v + 0.5) in these intrinsics, as in `render`."""
        scene, _ = self.scene(index)
        rot = scene.cam_rot if cam_rot is None else np.asarray(cam_rot, dtype=np.float64)
        pos = scene.cam_pos if cam_pos is None else np.asarray(cam_pos, dtype=np.float64)
        intr = self.intrinsics if intrinsics is None else intrinsics
        h, w = int(intr["height"]), int(intr["width"])
        o3c = self.o3d.core
        rc = self.o3d.t.geometry.RaycastingScene()
        rc.add_triangles(o3c.Tensor(scene.vertices), o3c.Tensor(scene.triangles))
        rays = camera_rays(intr, rot, pos)
        t = rc.cast_rays(o3c.Tensor(rays.reshape(-1, 6)), nthreads=self.threads)["t_hit"].numpy().reshape(h, w)
        mm = np.where(np.isfinite(t), np.round(t.astype(np.float64) * 1000.0), 0.0)
        return np.clip(mm, 0, 65535).astype(np.uint16)

    def render(self, index: int) -> SynthFrame:
        scene, rng = self.scene(index)
        h, w = self.size
        o3c = self.o3d.core
        rc = self.o3d.t.geometry.RaycastingScene()
        rc.add_triangles(o3c.Tensor(scene.vertices), o3c.Tensor(scene.triangles))
        rays = camera_rays(self.intrinsics, scene.cam_rot, scene.cam_pos)
        hit = rc.cast_rays(o3c.Tensor(rays.reshape(-1, 6)), nthreads=self.threads)
        t = hit["t_hit"].numpy().reshape(h, w).astype(np.float64)
        prim = hit["primitive_ids"].numpy().reshape(h, w)
        normal = hit["primitive_normals"].numpy().reshape(h, w, 3).astype(np.float64)

        found = np.isfinite(t)
        part = np.where(found, scene.tri_part[np.where(found, prim, 0)], -1)
        labels = np.where(found, scene.part_label[np.maximum(part, 0)], 0).astype(np.uint8)
        mat_idx = np.where(found, scene.part_material[np.maximum(part, 0)], 0)

        dirs = rays[..., 3:].astype(np.float64)
        points = scene.cam_pos + dirs * np.where(found, t, 0.0)[..., None]
        # face the camera: Open3D's normals follow the triangle winding, which we do not fix
        flip = np.sum(normal * dirs, axis=-1) > 0
        normal[flip] *= -1

        albedo, emission, ir_drop = self._materials(scene, mat_idx, points)
        albedo = self._contrast(albedo, found, scene.lighting.contrast)
        radiance = self._shade(rc, scene, points, normal, albedo, emission, found)
        rgb = expose(radiance, rng)

        view = dirs / np.linalg.norm(dirs, axis=-1, keepdims=True)
        cos_view = np.abs(np.sum(normal * view, axis=-1))
        lum = albedo @ np.array([0.2126, 0.7152, 0.0722])
        depth = simulate_depth(np.where(found, t, np.inf), ir_drop, lum, cos_view, self.intrinsics["fx"], rng,
                               self.config.min_range_m, self.config.max_range_m)
        light = scene.lighting
        meta = {"lighting": light.name, "light_level": round(float(light.level), 4), "hard": scene.hard,
                "hard_factors": list(scene.hard_factors), "seed": self.seed, "index": int(index),
                "room_size_m": [round(v, 3) for v in scene.room_size],
                "camera_height_m": round(float(scene.cam_pos[2]), 3)}
        return SynthFrame(rgb, depth, labels, dict(self.intrinsics), meta)

    # --- shading ------------------------------------------------------------------------------
    @staticmethod
    def _materials(scene: Scene, mat_idx: np.ndarray, points: np.ndarray):
        mats = scene.materials
        col_a = np.stack([m.color_a for m in mats])[mat_idx]
        col_b = np.stack([m.color_b for m in mats])[mat_idx]
        waves = np.stack([m.waves for m in mats])[mat_idx]               # H x W x 3 x 4
        sharp = np.array([m.sharpness for m in mats])[mat_idx]
        phase = np.einsum("hwkc,hwc->hwk", waves[..., :3], points) + waves[..., 3]
        s = np.sin(phase).mean(axis=-1)
        sharpened = np.tanh(np.maximum(sharp, 1e-3) * s) / np.tanh(np.maximum(sharp, 1e-3))
        weight = 0.5 + 0.5 * np.where(sharp > 0, sharpened, s)
        albedo = col_a + (col_b - col_a) * weight[..., None]
        emission = np.array([m.emission for m in mats])[mat_idx]
        ir_drop = np.array([m.ir_dropout for m in mats])[mat_idx]
        return albedo, emission, ir_drop

    @staticmethod
    def _contrast(albedo: np.ndarray, found: np.ndarray, contrast: float) -> np.ndarray:
        if contrast >= 1.0:
            return albedo
        mean = albedo[found].mean(axis=0) if found.any() else np.full(3, 0.3)
        return mean + (albedo - mean) * contrast

    def _shade(self, rc, scene: Scene, points, normal, albedo, emission, found) -> np.ndarray:
        light = scene.lighting
        to_light = light.light_pos - points
        dist = np.linalg.norm(to_light, axis=-1)
        ldir = to_light / np.maximum(dist, 1e-6)[..., None]
        ndl = np.clip(np.sum(normal * ldir, axis=-1), 0.0, None)
        visible = np.ones_like(ndl)
        if light.shadows and light.directional > 0:
            origin = points + normal * 2e-3
            rays = np.concatenate([origin, to_light], axis=-1).reshape(-1, 6).astype(np.float32)
            o3c = self.o3d.core
            t = rc.cast_rays(o3c.Tensor(rays), nthreads=self.threads)["t_hit"].numpy().reshape(ndl.shape)
            visible = np.where(t < 0.995, 0.15, 1.0)  # some bounce light reaches the shadow
        falloff = 2.5 / (1.0 + 0.3 * dist ** 2)
        irradiance = light.ambient + light.directional * ndl * visible * falloff
        radiance = light.level * albedo * irradiance[..., None]
        radiance += albedo * emission[..., None]  # self-lit: windows, TV screens
        return np.where(found[..., None], radiance, 0.0)
