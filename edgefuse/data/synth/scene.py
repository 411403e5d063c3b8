"""Procedural indoor rooms: a box room with furniture, wall decorations and clutter.

Layout grammar (one room per frame): walls, floor and ceiling; beds, sofas and furniture
(wardrobes, dressers, nightstands, shelves with books) with their backs to the walls; a table
with chairs in the free floor; pictures, a TV and windows flat on the walls; small objects
on tables, furniture tops and the floor. Sizes follow real furniture, because on hard frames
height and shape are the only cues that separate the classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgefuse.data.classes import label_id
from edgefuse.data.synth.config import SynthConfig
from edgefuse.data.synth.geometry import Frame2D, Mesh
from edgefuse.data.synth.materials import (ROOM_CLASSES, SAME_TEXTURE_CLASSES, Material, class_material,
                                           shared_material)

LIGHTING_FACTORS = ("dark", "flat_light", "low_contrast")


@dataclass
class Lighting:
    """One ceiling light plus ambient light. `level` scales both (1 = a normally lit room)."""

    name: str
    level: float
    ambient: float
    directional: float
    light_pos: np.ndarray
    contrast: float = 1.0  # < 1 pulls every albedo towards the scene's mean (low-contrast)
    shadows: bool = True


@dataclass
class Scene:
    vertices: np.ndarray         # V x 3 float32
    triangles: np.ndarray        # T x 3 uint32
    tri_part: np.ndarray         # T: part index of each triangle
    part_label: np.ndarray       # P: NYU13 label (1..13) of each part
    part_material: np.ndarray    # P: index into materials
    materials: list[Material]
    room_size: tuple[float, float, float]
    cam_rot: np.ndarray          # 3x3 world-from-camera (OpenCV axes: x right, y down, z forward)
    cam_pos: np.ndarray          # 3
    lighting: Lighting
    hard: bool
    hard_factors: list[str]


@dataclass
class _Surface:
    """A horizontal top (table, furniture) on which objects can stand."""

    frame: Frame2D
    half: tuple[float, float]
    z: float
    kind: str


@dataclass
class _Builder:
    rng: np.random.Generator
    room: tuple[float, float, float]
    shared: dict[int, int]  # label -> material index used for every object of that label
    meshes: list[Mesh] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    mats: list[int] = field(default_factory=list)
    materials: list[Material] = field(default_factory=list)
    footprints: list[tuple[float, float, float, float]] = field(default_factory=list)  # xmin ymin xmax ymax
    wall_items: list[list[tuple[float, float, float, float]]] = field(default_factory=lambda: [[], [], [], []])
    surfaces: list[_Surface] = field(default_factory=list)
    centers: list[np.ndarray] = field(default_factory=list)

    def material(self, name: str) -> int:
        lab = label_id(name) if name in _LABELLED else None
        if lab is not None and lab in self.shared:
            return self.shared[lab]
        self.materials.append(class_material(self.rng, name))
        return len(self.materials) - 1

    def add(self, mesh: Mesh, name: str, mat: int) -> None:
        self.meshes.append(mesh)
        self.labels.append(label_id(name))
        self.mats.append(mat)

    # --- placement bookkeeping -------------------------------------------------------------
    def wall_frame(self, wall: int, s: float, e: float) -> Frame2D:
        """Frame at distance s along wall `wall` and e from it, facing into the room."""
        w, d, _ = self.room
        return [Frame2D(s, e, 0.0), Frame2D(w - e, s, np.pi / 2),
                Frame2D(w - s, d - e, np.pi), Frame2D(e, d - s, -np.pi / 2)][wall]

    def wall_length(self, wall: int) -> float:
        return self.room[0] if wall % 2 == 0 else self.room[1]

    def free_floor(self, frame: Frame2D, half: tuple[float, float], margin: float = 0.05) -> bool:
        box = _aabb(frame, half)
        w, d, _ = self.room
        if box[0] < 0.0 or box[1] < 0.0 or box[2] > w or box[3] > d:
            return False
        return all(not _overlap(box, f, margin) for f in self.footprints)

    def claim_floor(self, frame: Frame2D, half: tuple[float, float], wall: int | None = None,
                    s: float = 0.0, height: float = 0.0) -> None:
        self.footprints.append(_aabb(frame, half))
        self.centers.append(frame.origin + [0.0, 0.0, height / 2])
        if wall is not None:
            self.wall_items[wall].append((s - half[0], s + half[0], 0.0, height))

    def free_wall(self, wall: int, s0: float, s1: float, z0: float, z1: float) -> bool:
        if s0 < 0.1 or s1 > self.wall_length(wall) - 0.1 or z1 > self.room[2] - 0.05:
            return False
        return all(s1 + 0.05 < a0 or s0 - 0.05 > a1 or z1 + 0.05 < b0 or z0 - 0.05 > b1
                   for a0, a1, b0, b1 in self.wall_items[wall])


_LABELLED = {"bed", "books", "ceiling", "chair", "floor", "furniture", "objects", "picture", "sofa",
             "table", "tv", "wall", "window"}


def _aabb(frame: Frame2D, half: tuple[float, float]) -> tuple[float, float, float, float]:
    hx, hy = half
    corners = frame.to_world(np.array([[sx * hx, sy * hy, 0.0] for sx in (-1, 1) for sy in (-1, 1)]))
    return (corners[:, 0].min(), corners[:, 1].min(), corners[:, 0].max(), corners[:, 1].max())


def _overlap(a, b, margin: float) -> bool:
    return not (a[2] + margin <= b[0] or b[2] + margin <= a[0] or a[3] + margin <= b[1] or b[3] + margin <= a[1])


def _quad(p0, p1, p2, p3) -> Mesh:
    return Mesh(np.array([p0, p1, p2, p3], dtype=np.float64), np.array([[0, 1, 2], [0, 2, 3]]))


# --- furniture grammar ----------------------------------------------------------------------

def _bed(b: _Builder, f: Frame2D, w: float, l: float) -> None:
    rng = b.rng
    m = b.material("bed")
    hb = rng.uniform(0.25, 0.32)
    top = hb + rng.uniform(0.18, 0.28)
    b.add(f.box((0, 0, hb / 2), (w, l, hb)), "bed", m)                                   # frame
    b.add(f.box((0, 0.02, (hb + top) / 2), (w - 0.06, l - 0.1, top - hb)), "bed", m)      # mattress
    b.add(f.box((0, -l / 2 + 0.03, rng.uniform(0.45, 0.6)), (w, 0.06, rng.uniform(0.9, 1.2))), "bed", m)  # headboard
    for k in range(1 if w < 1.3 else 2):                                                  # pillows
        x = 0.0 if w < 1.3 else (-0.25 if k == 0 else 0.25) * w
        b.add(f.box((x, -l / 2 + 0.3, top + 0.06), (min(0.55, w * 0.42), 0.32, 0.12)), "objects", b.material("objects"))


def _sofa(b: _Builder, f: Frame2D, w: float, d: float) -> None:
    rng = b.rng
    m = b.material("sofa")
    seat = rng.uniform(0.38, 0.45)
    back = rng.uniform(0.75, 0.9)
    arm = rng.uniform(0.55, 0.65)
    aw = rng.uniform(0.15, 0.22)
    b.add(f.box((0, 0.05, seat / 2), (w - 2 * aw, d - 0.1, seat)), "sofa", m)
    b.add(f.box((0, -d / 2 + 0.1, back / 2), (w, 0.2, back)), "sofa", m)
    for sx in (-1, 1):
        b.add(f.box((sx * (w - aw) / 2, 0.0, arm / 2), (aw, d, arm)), "sofa", m)
    if rng.random() < 0.6:
        b.add(f.box((rng.uniform(-0.3, 0.3) * w, -d / 2 + 0.3, seat + 0.18), (0.4, 0.14, 0.36)), "objects", b.material("objects"))


def _table(b: _Builder, f: Frame2D, w: float, d: float, h: float) -> None:
    m = b.material("table")
    t = 0.035
    b.add(f.box((0, 0, h - t / 2), (w, d, t)), "table", m)
    for sx in (-1, 1):
        for sy in (-1, 1):
            b.add(f.box((sx * (w / 2 - 0.06), sy * (d / 2 - 0.06), (h - t) / 2), (0.05, 0.05, h - t)), "table", m)
    b.surfaces.append(_Surface(f, (w / 2 - 0.08, d / 2 - 0.08), h, "table"))


def _chair(b: _Builder, f: Frame2D) -> None:
    rng = b.rng
    m = b.material("chair")
    s = rng.uniform(0.40, 0.50)
    h = rng.uniform(0.43, 0.48)
    b.add(f.box((0, 0, h - 0.02), (s, s, 0.04)), "chair", m)
    for sx in (-1, 1):
        for sy in (-1, 1):
            b.add(f.box((sx * (s / 2 - 0.03), sy * (s / 2 - 0.03), (h - 0.04) / 2), (0.035, 0.035, h - 0.04)), "chair", m)
    bh = rng.uniform(0.35, 0.5)
    b.add(f.box((0, -s / 2 + 0.02, h + bh / 2), (s, 0.04, bh)), "chair", m)


def _furniture(b: _Builder, f: Frame2D, kind: str, w: float, d: float, h: float) -> None:
    m = b.material("furniture")
    if kind == "shelf":  # open bookshelf: sides, back, boards, books inside
        t = 0.025
        b.add(f.box((0, -d / 2 + t / 2, h / 2), (w, t, h)), "furniture", m)
        for sx in (-1, 1):
            b.add(f.box((sx * (w / 2 - t / 2), 0, h / 2), (t, d, h)), "furniture", m)
        n = max(2, int(h / 0.35))
        for i in range(n + 1):
            z = min(i * h / n, h - t)
            b.add(f.box((0, 0, z + t / 2), (w - 2 * t, d, t)), "furniture", m)
            if i < n:
                _books(b, f, -w / 2 + t + 0.01, w / 2 - t - 0.01, -d / 2 + t, z + t, h / n - t - 0.02)
    else:  # closed cabinet (wardrobe, dresser, nightstand) with drawer/door slabs on the front
        b.add(f.box((0, 0, h / 2), (w, d, h)), "furniture", m)
        rows = 1 if kind == "wardrobe" else int(b.rng.integers(2, 5))
        for i in range(rows):
            z0 = 0.08 + i * (h - 0.1) / rows
            b.add(f.box((0, d / 2 + 0.008, z0 + (h - 0.1) / rows / 2), (w - 0.06, 0.016, (h - 0.1) / rows - 0.03)),
                  "furniture", m)
    b.surfaces.append(_Surface(f, (w / 2 - 0.04, d / 2 - 0.04), h, kind))


def _books(b: _Builder, f: Frame2D, x0: float, x1: float, y_back: float, z: float, max_h: float) -> None:
    rng = b.rng
    x = x0 + rng.uniform(0, 0.1)
    while True:
        tw = rng.uniform(0.02, 0.05)
        if x + tw > x1 or rng.random() < 0.04:
            break
        bh = min(rng.uniform(0.16, 0.28), max_h)
        bd = rng.uniform(0.14, 0.22)
        if bh > 0.05:
            b.add(f.box((x + tw / 2, y_back + bd / 2, z + bh / 2), (tw, bd, bh)), "books", b.material("books"))
        x += tw + (rng.uniform(0.05, 0.3) if rng.random() < 0.08 else 0.002)


def _clutter(b: _Builder, s: _Surface) -> None:
    """Objects, books or a lamp on a table or furniture top."""
    rng = b.rng
    for _ in range(int(rng.integers(0, 4))):
        x = rng.uniform(-s.half[0], s.half[0]) * 0.85
        y = rng.uniform(-s.half[1], s.half[1]) * 0.85
        kind = rng.choice(["box", "cyl", "books"] + (["lamp"] if s.kind == "nightstand" else []))
        if kind == "box":
            size = rng.uniform([0.06, 0.06, 0.04], [0.3, 0.25, 0.25])
            b.add(s.frame.box((x, y, s.z + size[2] / 2), tuple(size)), "objects", b.material("objects"))
        elif kind == "cyl":
            b.add(s.frame.cylinder((x, y, s.z), rng.uniform(0.03, 0.1), rng.uniform(0.08, 0.35)), "objects",
                  b.material("objects"))
        elif kind == "lamp":
            m = b.material("objects")
            b.add(s.frame.cylinder((x, y, s.z), 0.06, 0.3), "objects", m)
            b.add(s.frame.cylinder((x, y, s.z + 0.3), 0.14, 0.2), "objects", m)
        else:  # a lying stack of books
            z = s.z
            for _ in range(int(rng.integers(1, 4))):
                t = rng.uniform(0.02, 0.05)
                b.add(s.frame.box((x, y, z + t / 2), (rng.uniform(0.15, 0.25), rng.uniform(0.2, 0.3), t)), "books",
                      b.material("books"))
                z += t


# --- room assembly ----------------------------------------------------------------------------

def _against_wall(b: _Builder, w: float, d: float, h: float, tries: int = 12):
    """A free spot for a w x d footprint with its back to a wall: (wall, s, frame) or None."""
    for _ in range(tries):
        wall = int(b.rng.integers(4))
        length = b.wall_length(wall)
        if w + 0.2 > length:
            continue
        s = b.rng.uniform(w / 2 + 0.05, length - w / 2 - 0.05)
        f = b.wall_frame(wall, s, d / 2 + 0.01)
        if b.free_floor(f, (w / 2, d / 2)):
            b.claim_floor(f, (w / 2, d / 2), wall, s, h)
            return wall, s, f
    return None


def _on_wall(b: _Builder, name: str, w: float, h: float, t: float, z0: float, mat: int, tries: int = 10) -> bool:
    for _ in range(tries):
        wall = int(b.rng.integers(4))
        s = b.rng.uniform(w / 2, max(w / 2, b.wall_length(wall) - w / 2))
        if not b.free_wall(wall, s - w / 2, s + w / 2, z0, z0 + h):
            continue
        f = b.wall_frame(wall, s, t / 2 + 0.002)
        b.add(f.box((0, 0, z0 + h / 2), (w, t, h)), name, mat)
        b.wall_items[wall].append((s - w / 2, s + w / 2, z0, z0 + h))
        return True
    return False


def _room_shell(b: _Builder) -> None:
    w, d, h = b.room
    wall_m = b.material("wall")
    b.add(_quad((0, 0, 0), (w, 0, 0), (w, d, 0), (0, d, 0)), "floor", b.material("floor"))
    b.add(_quad((0, 0, h), (w, 0, h), (w, d, h), (0, d, h)), "ceiling", b.material("ceiling"))
    b.add(_quad((0, 0, 0), (w, 0, 0), (w, 0, h), (0, 0, h)), "wall", wall_m)
    b.add(_quad((w, 0, 0), (w, d, 0), (w, d, h), (w, 0, h)), "wall", wall_m)
    b.add(_quad((0, d, 0), (w, d, 0), (w, d, h), (0, d, h)), "wall", wall_m)
    b.add(_quad((0, 0, 0), (0, d, 0), (0, d, h), (0, 0, h)), "wall", wall_m)


def _populate(b: _Builder) -> None:
    rng = b.rng
    if rng.random() < 0.55:
        w, l = rng.uniform(0.95, 1.9), rng.uniform(1.95, 2.15)
        spot = _against_wall(b, w, l, 0.6)
        if spot:
            _bed(b, spot[2], w, l)
    if rng.random() < 0.6:
        w, d = rng.uniform(1.5, 2.4), rng.uniform(0.8, 0.95)
        spot = _against_wall(b, w, d, 0.85)
        if spot:
            _sofa(b, spot[2], w, d)
    for _ in range(int(rng.integers(1, 4))):
        kind = str(rng.choice(["wardrobe", "dresser", "nightstand", "shelf"]))
        w, d, h = {"wardrobe": (rng.uniform(0.8, 1.6), rng.uniform(0.5, 0.62), rng.uniform(1.8, 2.2)),
                   "dresser": (rng.uniform(0.8, 1.4), rng.uniform(0.42, 0.5), rng.uniform(0.8, 1.1)),
                   "nightstand": (rng.uniform(0.4, 0.5), rng.uniform(0.35, 0.45), rng.uniform(0.5, 0.62)),
                   "shelf": (rng.uniform(0.7, 1.2), rng.uniform(0.28, 0.35), rng.uniform(1.1, 2.0))}[kind]
        spot = _against_wall(b, w, d, h)
        if spot:
            _furniture(b, spot[2], kind, w, d, h)
    if rng.random() < 0.8:  # a table with chairs around it, free in the room
        w, d = rng.uniform(0.8, 1.8), rng.uniform(0.6, 1.0)
        low = rng.random() < 0.2  # coffee table
        h = rng.uniform(0.4, 0.5) if low else rng.uniform(0.7, 0.78)
        rw, rd, _ = b.room
        for _ in range(12):
            f = Frame2D(rng.uniform(0.6, rw - 0.6), rng.uniform(0.6, rd - 0.6), rng.uniform(0, np.pi))
            if b.free_floor(f, (w / 2, d / 2), margin=0.4 if not low else 0.1):
                b.claim_floor(f, (w / 2, d / 2), height=h)
                _table(b, f, w, d, h)
                if not low:
                    for _ in range(int(rng.integers(0, 5))):
                        side = int(rng.integers(4))
                        off = [(0, -d / 2 - 0.3, 0.0), (0, d / 2 + 0.3, np.pi), (-w / 2 - 0.3, 0, -np.pi / 2),
                               (w / 2 + 0.3, 0, np.pi / 2)][side]
                        x = off[0] + (rng.uniform(-w / 3, w / 3) if side < 2 else 0)
                        y = off[1] + (rng.uniform(-d / 4, d / 4) if side >= 2 else 0)
                        p = f.to_world(np.array([x, y, 0.0]))
                        # chairs face the table: local +y of the chair points at the table
                        cf = Frame2D(p[0], p[1], f.yaw + off[2] + rng.normal(0, 0.2))
                        if b.free_floor(cf, (0.25, 0.25), margin=0.0):
                            b.claim_floor(cf, (0.25, 0.25), height=0.9)
                            _chair(b, cf)
                break
    for _ in range(int(rng.integers(0, 3))):  # lone chairs
        rw, rd, _ = b.room
        cf = Frame2D(rng.uniform(0.3, rw - 0.3), rng.uniform(0.3, rd - 0.3), rng.uniform(-np.pi, np.pi))
        if b.free_floor(cf, (0.25, 0.25)):
            b.claim_floor(cf, (0.25, 0.25), height=0.9)
            _chair(b, cf)
    for s in list(b.surfaces):
        if s.kind != "shelf":
            _clutter(b, s)
    for _ in range(int(rng.integers(0, 4))):  # boxes, bins and bags on the floor
        rw, rd, _ = b.room
        size = rng.uniform([0.2, 0.2, 0.15], [0.5, 0.5, 0.55])
        f = Frame2D(rng.uniform(0.3, rw - 0.3), rng.uniform(0.3, rd - 0.3), rng.uniform(-np.pi, np.pi))
        if b.free_floor(f, (size[0] / 2, size[1] / 2)):
            b.claim_floor(f, (size[0] / 2, size[1] / 2), height=size[2])
            if rng.random() < 0.5:
                b.add(f.box((0, 0, size[2] / 2), tuple(size)), "objects", b.material("objects"))
            else:
                b.add(f.cylinder((0, 0, 0), size[0] / 2, size[2]), "objects", b.material("objects"))
    # wall decorations: flat, so the depth camera barely sees them (only colour reveals them)
    for _ in range(int(rng.integers(0, 3))):
        w = rng.uniform(0.8, 1.6)
        _on_wall(b, "window", w, rng.uniform(0.9, 1.4), 0.04, rng.uniform(0.8, 1.0), b.material("window"))
    if rng.random() < 0.6:
        w = rng.uniform(0.7, 1.4)
        _on_wall(b, "tv", w, w * 9 / 16, rng.uniform(0.03, 0.06), rng.uniform(0.9, 1.3), b.material("tv"))
    for _ in range(int(rng.integers(0, 5))):
        w = rng.uniform(0.3, 1.1)
        _on_wall(b, "picture", w, w * rng.uniform(0.6, 1.3), rng.uniform(0.005, 0.015), rng.uniform(1.1, 1.6),
                 b.material("picture"))


def _camera(b: _Builder) -> tuple[np.ndarray, np.ndarray]:
    """A robot-mounted camera (0.5-1.6 m high) in free floor, looking into the room."""
    rng = b.rng
    w, d, room_h = b.room
    pos = np.array([w / 2, d / 2, 1.0])
    for _ in range(50):
        x, y = rng.uniform(0.3, w - 0.3), rng.uniform(0.3, d - 0.3)
        if all(not (f[0] - 0.25 < x < f[2] + 0.25 and f[1] - 0.25 < y < f[3] + 0.25) for f in b.footprints):
            pos = np.array([x, y, rng.uniform(0.5, 1.6)])
            break
    centers = [c for c in b.centers if np.linalg.norm(c[:2] - pos[:2]) > 1.0]
    if centers and rng.random() < 0.6:
        target = centers[int(rng.integers(len(centers)))]
    else:
        target = np.array([w / 2, d / 2, rng.uniform(0.3, 1.6)])
        target[:2] += rng.normal(0, 0.5, 2)
    delta = target - pos
    yaw = np.arctan2(delta[1], delta[0]) + rng.normal(0, 0.2)
    # mostly level or looking down, sometimes up (ceiling in view), as a mobile robot sees a room
    pitch = np.clip(np.arctan2(delta[2], np.linalg.norm(delta[:2])) + rng.normal(0, 0.15), -0.7, 0.35)
    roll = rng.normal(0, 0.03)
    fwd = np.array([np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw), np.sin(pitch)])
    right = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
    down = np.cross(fwd, right)
    c, s = np.cos(roll), np.sin(roll)
    right, down = c * right + s * down, -s * right + c * down
    return np.stack([right, down, fwd], axis=1), pos


def _lighting(rng: np.random.Generator, room, factors: list[str], shadows: bool) -> Lighting:
    w, d, h = room
    pos = np.array([rng.uniform(0.25, 0.75) * w, rng.uniform(0.25, 0.75) * d, h - 0.05])
    light = Lighting("normal", level=rng.uniform(0.8, 1.25), ambient=rng.uniform(0.25, 0.4),
                     directional=rng.uniform(0.8, 1.1), light_pos=pos, shadows=shadows)
    if "dark" in factors:  # a dim room: the camera's gain saturates, colour drowns in noise
        light.level = rng.uniform(0.012, 0.04)
    if "flat_light" in factors:  # diffuse light only: no shading tells surfaces apart
        light.ambient, light.directional, light.shadows = 1.0, 0.0, False
    if "low_contrast" in factors:
        light.contrast = rng.uniform(0.08, 0.2)
    light.name = "+".join(f for f in factors if f in LIGHTING_FACTORS) or "normal"
    return light


def generate_scene(rng: np.random.Generator, config: SynthConfig = SynthConfig()) -> Scene:
    """Draw one room, its camera, lighting and hard factors from `rng`."""
    hard = bool(rng.random() < config.hard_fraction)
    factors: list[str] = []
    if hard:
        while not factors:
            if rng.random() < config.same_texture_prob:
                factors.append("same_texture")
                if rng.random() < config.room_texture_prob:
                    factors.append("same_texture_room")
            if rng.random() < config.hard_light_prob:
                k = 2 if rng.random() < 0.25 else 1
                factors += [str(x) for x in rng.choice(LIGHTING_FACTORS, size=k, replace=False)]
    room = (float(rng.uniform(3.2, 6.5)), float(rng.uniform(3.2, 6.5)), float(rng.uniform(2.4, 3.0)))
    b = _Builder(rng, room, shared={})
    if "same_texture" in factors:
        b.materials.append(shared_material(rng))
        classes = SAME_TEXTURE_CLASSES | (ROOM_CLASSES if "same_texture_room" in factors else frozenset())
        b.shared = {lab: 0 for lab in classes}
    _room_shell(b)
    _populate(b)
    cam_rot, cam_pos = _camera(b)
    lighting = _lighting(rng, room, factors, config.shadows)

    counts = [len(m.vertices) for m in b.meshes]
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    vertices = np.concatenate([m.vertices for m in b.meshes]).astype(np.float32)
    triangles = np.concatenate([m.triangles + o for m, o in zip(b.meshes, offsets)]).astype(np.uint32)
    tri_part = np.concatenate([np.full(len(m.triangles), i) for i, m in enumerate(b.meshes)])
    return Scene(vertices, triangles, tri_part, np.asarray(b.labels, dtype=np.uint8),
                 np.asarray(b.mats, dtype=np.int64), b.materials, room, cam_rot, cam_pos, lighting, hard, factors)
