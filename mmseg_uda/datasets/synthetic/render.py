"""Render a street layout (``scene.py``) in a domain style (``style.py``) to an image and labels.

The static scene (road, sidewalks, facades, sky) is ray-cast per pixel in numpy, with textures
looked up in world coordinates so that their scale follows perspective. Vehicles, people, poles
and trees are fronto-parallel billboards drawn far-to-near with OpenCV, into the image and into
the label map with the same geometry. Camera effects (tone, blur, noise) come last.
"""
from __future__ import annotations

import zlib
from contextlib import contextmanager, nullcontext

import cv2
import numpy as np

from .scene import (
    BICYCLE,
    BUILDING,
    BUS,
    CAR,
    EGO,
    FENCE,
    GAP,
    LIGHT,
    MARKING,
    MOTORCYCLE,
    PERSON,
    POLE,
    RAIL,
    RIDER,
    ROAD,
    SEG_BUILDING,
    SEG_FENCE,
    SEG_VEGETATION,
    SEG_WALL,
    SIDEWALK,
    SIGN,
    SKY,
    STATIC,
    TERRAIN,
    TRAIN,
    TRUCK,
    VEGETATION,
    WALL,
    Obj,
    Scene,
    Segments,
)
from .style import RGB, Style

_SHIFT = 3                # OpenCV fixed-point bits: draw at 1/8-pixel precision
_ONE = 1 << _SHIFT
_SKIN = ((226, 176, 142), (176, 124, 92), (104, 72, 54))


class Noise:
    """Smooth periodic noise tiles in [0, 1], looked up at arbitrary (u, v) coordinates."""

    SIZE = 64

    def __init__(self, rng: np.random.Generator):
        f = np.fft.fftfreq(self.SIZE)[:, None] ** 2 + np.fft.rfftfreq(self.SIZE)[None] ** 2
        self.tiles = []
        for falloff in (2.5, 1.5):          # 0: smooth blotches, 1: fine grain
            spectrum = (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape))
            spectrum /= np.maximum(f, 1 / self.SIZE**2) ** (falloff / 2)
            spectrum[0, 0] = 0
            tile = np.fft.irfft2(spectrum, s=(self.SIZE, self.SIZE)).astype(np.float32)
            tile = (tile - tile.min()) / (np.ptp(tile) + 1e-6)
            self.tiles.append(tile)

    def __call__(self, level: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Noise at ``(u, v)``, in tile widths; any shape, periodic with period 1."""
        u, v = np.broadcast_arrays(u, v)
        shape = u.shape
        if u.size == 0:
            return np.zeros(shape, np.float32)
        n, cols = u.size, 1024   # remap wants 2-D maps of fewer than 2**15 rows
        pad = -n % cols
        maps = []
        for a in (u, v):
            a = np.asarray(a, np.float32).ravel() * self.SIZE
            a = np.where(np.abs(a) < 1e6, a, 0)     # infinite depths: any texel will do
            maps.append(np.pad(np.mod(a, self.SIZE), (0, pad)).reshape(-1, cols))
        mx, my = maps
        out = cv2.remap(self.tiles[level], mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
        return out.ravel()[:n].reshape(shape)


class Palette:
    """The style's colours, each jittered once per image so that no colour names a class."""

    def __init__(self, style: Style, rng: np.random.Generator):
        self.rng, self.jitter = rng, style.color_jitter

    def __call__(self, rgb: RGB, extra: float = 0.0) -> np.ndarray:
        c = np.asarray(rgb, np.float32) + self.rng.normal(0, self.jitter + extra, 3)
        return np.clip(c, 0, 255).astype(np.float32)

    def pick(self, colours: tuple[RGB, ...], extra: float = 0.0) -> np.ndarray:
        return self(colours[self.rng.integers(len(colours))], extra)


def render(scene: Scene, style: Style, width: int, height: int
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the RGB image (uint8, HxWx3), internal label codes (uint8, HxW: train ids or the
    void codes of ``scene.py``) and instance ids (uint16, HxW; 0 for stuff)."""
    # Shapes come from ``geo``, the same in every style; colours and textures from ``rng``.
    geo = np.random.default_rng([scene.seed_render, 0])
    rng = np.random.default_rng([scene.seed_render, zlib.crc32(style.name.encode())])
    noise, palette = Noise(rng), Palette(style, rng)
    img, code = _background(scene, style, width, height, noise, Noise(geo), palette, rng)
    inst = np.zeros((height, width), np.uint16)
    painter = Painter(img, code, inst, scene, style, palette, geo)
    objects = [o for o in scene.objects if _object_class(o) not in style.absent]
    for obj in sorted(objects, key=lambda o: -o.z):
        painter.draw(obj)
    if style.ego_hood:
        _ego_hood(img, code, rng)
    return _camera(img, style, rng), code, inst


# --- the static scene -----------------------------------------------------------------------

def _background(scene: Scene, style: Style, W: int, H: int, noise: Noise, geo_noise: Noise,
                palette: Palette, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    cam = scene.cam
    dx = np.broadcast_to(((np.arange(W, dtype=np.float32) + 0.5 - cam.vp_x) / cam.focal)[None],
                         (H, W))
    rows = np.arange(H, dtype=np.float32)
    dy = np.broadcast_to(((cam.horizon - rows - 0.5) / cam.focal)[:, None], (H, W))
    inf = np.float32(np.inf)
    with np.errstate(divide='ignore', invalid='ignore'):
        z_ground = np.where(dy < -1e-4, cam.height / -dy, inf).astype(np.float32)
    rh = scene.road_half
    planes = [  # (x position, segments, is the near facade)
        (-(rh + scene.left.facade_dist), scene.left.near, True),
        (rh + scene.right.facade_dist, scene.right.near, True),
        (-(rh + scene.left.facade_dist + scene.left.back_offset), scene.left.back, False),
        (rh + scene.right.facade_dist + scene.right.back_offset, scene.right.back, False),
    ]
    # A side facade is only seen by the columns looking towards it.
    first_right = int(np.clip(np.ceil(cam.vp_x - 0.5), 0, W))
    depths, hits = [z_ground], []
    for x_plane, segs, near in planes:
        cols = slice(0, first_right) if x_plane < cam.x else slice(first_right, W)
        with np.errstate(divide='ignore', invalid='ignore'):
            z = ((x_plane - cam.x) / dx[:, cols]).astype(np.float32)
        y = cam.height + dy[:, cols] * z
        idx = segs.index(z)
        kind, top = segs.kind[idx], segs.height[idx].astype(np.float32)
        veg = kind == SEG_VEGETATION
        top[veg] += 1.6 * (geo_noise(0, z[veg] * 0.05, 0.3) - 0.5)
        ok = np.isfinite(z) & (z > 0.5) & (kind != GAP) & (y >= 0) & (y <= top)
        if near and scene.crossing is not None:
            cz, cw = scene.crossing
            ok &= ~((z > cz) & (z < cz + cw))
        depth = np.full((H, W), inf)
        depth[:, cols] = np.where(ok, z, inf)
        depths.append(depth)
        hits.append((cols, z, y, idx, segs, x_plane))
    if scene.end is not None:
        x_end = cam.x + dx * scene.end_z
        y_end = cam.height + dy * scene.end_z
        idx = scene.end.index(x_end)
        kind, top = scene.end.kind[idx], scene.end.height[idx]
        ok = (y_end >= 0) & (y_end <= top)
        depths.append(np.where(ok, np.float32(scene.end_z), inf))
        hits.append((slice(0, W), x_end, y_end, idx, scene.end, None))
    depth = np.stack(depths)
    layer = np.argmin(depth, axis=0)
    sky = ~np.isfinite(np.min(depth, axis=0))

    img = np.zeros((H, W, 3), np.float32)
    code = np.full((H, W), SKY, np.uint8)
    _sky(img, sky, dx, dy, cam.horizon / cam.focal, style, noise, palette, rng)
    ground = (layer == 0) & ~sky
    _ground(img, code, ground, z_ground, cam.x + dx * z_ground, scene, style, noise, palette)
    facade_tones = [palette(c) for c in style.facades]
    wall_tones = [palette(c) for c in style.walls]
    fence_tones = [palette(c) for c in style.fences]
    windows = [palette(c) for c in style.windows]
    veg = palette(style.vegetation)
    for i, (cols, s, y, idx, segs, x_plane) in enumerate(hits, start=1):
        m = (layer[:, cols] == i) & ~sky[:, cols]
        if not m.any():
            continue
        # Sunlit left facades face +X; the right ones are in shade on sunny styles.
        shade = 1.0 if (x_plane is None or x_plane < 0) else 0.5 + 0.5 * style.shadow
        _facade(img[:, cols], code[:, cols], m, s[m], y[m], idx[m], segs, style, noise,
                facade_tones, wall_tones, fence_tones, windows, veg, shade)
    return img, code


def _sky(img, m, dx, dy, dy_top, style, noise, palette, rng):
    t = np.clip(dy[m] / max(dy_top, 1e-3), 0, 1) ** 0.7
    low, high = palette(style.sky_horizon, 4), palette(style.sky_zenith, 6)
    col = low[None] * (1 - t[:, None]) + high[None] * t[:, None]
    cover = rng.uniform(*style.cloudiness)
    n = noise(0, dx[m] * 0.6 + rng.random(), dy[m] * 2.5 + rng.random())
    cloud = np.clip((n - (1 - cover)) * 4, 0, 1)[:, None]
    img[m] = col * (1 - cloud) + palette(style.cloud, 4)[None] * cloud


def _ground(img, code, m, z_all, x_all, scene: Scene, style: Style, noise, palette):
    z, x = z_all[m], x_all[m]
    ax, rh = np.abs(x), scene.road_half
    left = x < 0
    sw = np.where(left, scene.left.sidewalk, scene.right.sidewalk)
    tw = np.where(left, scene.left.terrain, scene.right.terrain)
    has_terrain = TERRAIN not in style.absent
    c = np.full(z.shape, ROAD, np.uint8)
    c[ax >= rh] = SIDEWALK
    beyond = ax >= rh + sw
    c[beyond & (tw > 0) & has_terrain] = TERRAIN
    if scene.crossing is not None:
        cz, cw = scene.crossing
        c[(z > cz) & (z < cz + cw)] = ROAD
    road = c == ROAD
    # Lane markings where a 12 cm line is at least ~0.6 px wide; farther they would alias.
    pix_m = z / scene.cam.focal
    visible = pix_m < 0.2
    lane_pos = (x + rh) / scene.lane_width
    near_lane = np.abs(lane_pos - np.round(lane_pos)) * scene.lane_width
    inner = (np.round(lane_pos) > 0) & (np.round(lane_pos) < round(2 * rh / scene.lane_width))
    dashes = (np.mod(z, 9.0) < 3.0) & inner & (near_lane < 0.07 + 0.5 * pix_m)
    edge = (np.abs(ax - (rh - 0.35)) < 0.06 + 0.5 * pix_m)
    marking = road & visible & (dashes | edge)
    if scene.crossing is not None:
        zebra = (z > cz - 4.0) & (z < cz - 1.0) & (np.mod(x, 1.0) < 0.5) & (ax < rh)
        marking |= road & zebra & visible
    c[marking] = MARKING
    if scene.rails_x is not None and RAIL not in style.absent and TRAIN not in style.absent:
        for rx in (scene.rails_x - 0.72, scene.rails_x + 0.72):
            c[road & visible & (np.abs(x - rx) < 0.04 + 0.5 * pix_m)] = RAIL
    code[m] = c

    col = np.zeros(z.shape + (3,), np.float32)
    tex = style.texture
    blotch, grain = noise(0, z * 0.08, x * 0.08), noise(1, z * 0.7, x * 0.7)
    col[:] = palette(style.road)
    col *= (1 + tex * (0.35 * (blotch - 0.5) + 0.25 * (grain - 0.5)))[:, None]
    col[c == MARKING] = palette(style.marking, 4)
    col[c == RAIL] = palette(style.metal)
    sidewalk = c == SIDEWALK
    tiles = (np.mod(z, 0.6) < 0.07) | (np.mod(x, 0.6) < 0.07)
    sw_col = palette(style.sidewalk)[None] * (1 + tex * 0.2 * (grain[sidewalk, None] - 0.5))
    sw_col[(tiles[sidewalk]) & (pix_m[sidewalk] < 0.05)] *= 1 - 0.18 * tex
    sw_col[ax[sidewalk] < rh + 0.25] = palette(style.kerb, 4)
    col[sidewalk] = sw_col
    terrain = c == TERRAIN
    col[terrain] = palette(style.terrain)[None] * (
        1 + tex * (0.5 * (blotch[terrain, None] - 0.5) + 0.4 * (grain[terrain, None] - 0.5)))
    col[x < scene.shadow_x] *= style.shadow
    img[m] = col


def _facade(img, code, m, s, y, idx, segs: Segments, style, noise, facades, walls, fences,
            windows, veg, shade):
    kind, tone, wstyle = segs.kind[idx], segs.tone[idx], segs.window[idx]
    top = segs.height[idx]
    c = np.full(s.shape, BUILDING, np.uint8)
    col = np.zeros(s.shape + (3,), np.float32)
    tex = style.texture
    grain = noise(1, s * 0.1, y * 0.1)

    b = kind == SEG_BUILDING
    col[b] = np.stack(facades)[tone[b] % len(facades)]
    col[b] *= (1 + tex * 0.16 * (grain[b] - 0.5))[:, None]
    floor = np.mod(y, 3.2) / 3.2
    win = (((wstyle == 1) & (np.mod(s, 2.6) / 2.6 > 0.28) & (np.mod(s, 2.6) / 2.6 < 0.72)
            & (floor > 0.3) & (floor < 0.78))
           | ((wstyle == 2) & (floor > 0.35) & (floor < 0.72))
           | ((wstyle == 3) & (np.mod(s, 1.8) / 1.8 > 0.3) & (np.mod(s, 1.8) / 1.8 < 0.62)
              & (floor > 0.18) & (floor < 0.86)))
    win &= b & (y > 3.0) & (y < top - 0.9)
    shop = b & (y > 0.4) & (y < 2.6) & (wstyle != 3) & (np.mod(s, 6.0) < 4.5)
    wcol = np.stack(windows)[tone % len(windows)]
    col[win | shop] = wcol[win | shop] * (0.8 + 0.5 * tex * grain[win | shop, None])
    col[b & (floor < 0.04)] *= 1 - 0.2 * tex

    w = kind == SEG_WALL
    c[w] = WALL
    col[w] = np.stack(walls)[tone[w] % len(walls)]
    col[w] *= (1 + tex * 0.3 * (noise(0, s[w] * 0.1, y[w] * 0.1) - 0.5))[:, None]
    col[w & (y > top - 0.15)] *= 1.15
    # Block courses with staggered joints, in every style: what tells a wall from a windowless
    # facade of the same tone (a texture, so the domain shift still applies to the colour).
    course = np.floor(y / 0.4)
    joint = (np.mod(y, 0.4) < 0.07) | (np.mod(s + 0.5 * np.mod(course, 2), 1.0) < 0.08)
    col[w & joint & (y < top - 0.15)] *= 0.62

    f = kind == SEG_FENCE
    c[f] = FENCE
    col[f] = np.stack(fences)[tone[f] % len(fences)]
    bars = (np.mod(s, 0.16) < 0.05) | (np.abs(y - top + 0.1) < 0.07) | (y < 0.12)
    col[f & ~bars] *= 0.45

    v = kind == SEG_VEGETATION
    c[v] = VEGETATION
    leaf = 0.5 * noise(0, s[v] * 0.25, y[v] * 0.25) + 0.5 * noise(1, s[v] * 0.15, y[v] * 0.15)
    col[v] = veg[None] * (0.55 + 0.9 * tex * (leaf[:, None] - 0.5) + 0.45)
    img[m] = col * shade
    code[m] = c


# --- objects ----------------------------------------------------------------------------------

# Tail objects drawn larger than life (linear factor), each about as many times rarer as it is
# larger in area (``scene.py``), so that a class keeps its pixel share while its instances grow
# from a few pixels to a learnable size at the small scale's 256-pixel width (docs/data.md).
MAGNIFY = {'bicycle': 2.0, 'motorcycle': 2.0, 'signpost': 2.6, 'lightpost': 1.7}

_CLASS_OF = {'car': CAR, 'truck': TRUCK, 'bus': BUS, 'train': TRAIN, 'person': PERSON,
             'bicycle': BICYCLE, 'motorcycle': MOTORCYCLE, 'tree': VEGETATION, 'lamp': POLE,
             'signpost': SIGN, 'lightpost': LIGHT, 'static': STATIC}


def _object_class(obj: Obj) -> int:
    return _CLASS_OF[obj.kind]


class Painter:
    """Draws billboards: local coordinates (u metres right of the object's centre, v metres up)
    at depth ``z`` map to pixels. ``geo`` draws the shapes' random sizes, the same in every
    style; ``palette`` the colours."""

    def __init__(self, img, code, inst, scene: Scene, style: Style, palette: Palette,
                 geo: np.random.Generator):
        self.img, self.code, self.inst = img, code, inst
        self.scene, self.style, self.palette, self.rng = scene, style, palette, geo
        self.n_inst = 0

    # geometry
    def _frame(self, obj: Obj) -> tuple[float, float, float]:
        cam = self.scene.cam
        s = cam.focal / obj.z
        return cam.vp_x + (obj.x - cam.x) * s, cam.horizon + cam.height * s, s

    def _pts(self, uv) -> np.ndarray:
        x0, y0, s = self.frame
        uv = np.asarray(uv, np.float64).reshape(-1, 2)
        return np.round(np.stack([x0 + uv[:, 0] * s, y0 - uv[:, 1] * s], 1) * _ONE).astype(np.int32)

    # primitives: the image gets anti-aliased edges, the labels hard ones
    def poly(self, uv, colour, cls):
        pts = [self._pts(uv)]
        cv2.fillPoly(self.img, pts, colour.tolist(), cv2.LINE_AA, _SHIFT)
        if cls is not None:
            cv2.fillPoly(self.code, pts, int(cls), cv2.LINE_8, _SHIFT)
            cv2.fillPoly(self.inst, pts, self.n_inst, cv2.LINE_8, _SHIFT)

    def rect(self, u0, v0, u1, v1, colour, cls):
        self.poly([(u0, v0), (u1, v0), (u1, v1), (u0, v1)], colour, cls)

    def disc(self, u, v, r, colour, cls, ring: float | None = None):
        c = tuple(int(p) for p in self._pts([(u, v)])[0])
        rad = max(int(round(r * self.frame[2] * _ONE)), _ONE // 2)
        thick = -1 if ring is None else max(1, int(round(ring * self.frame[2])))
        cv2.circle(self.img, c, rad, colour.tolist(), thick, cv2.LINE_AA, _SHIFT)
        if cls is not None:
            cv2.circle(self.code, c, rad, int(cls), thick, cv2.LINE_8, _SHIFT)
            cv2.circle(self.inst, c, rad, self.n_inst, thick, cv2.LINE_8, _SHIFT)

    def line(self, uv0, uv1, width, colour, cls):
        p = self._pts([uv0, uv1])
        thick = max(1, int(round(width * self.frame[2])))
        cv2.line(self.img, tuple(p[0]), tuple(p[1]), colour.tolist(), thick, cv2.LINE_AA, _SHIFT)
        if cls is not None:
            cv2.line(self.code, tuple(p[0]), tuple(p[1]), int(cls), thick, cv2.LINE_8, _SHIFT)
            cv2.line(self.inst, tuple(p[0]), tuple(p[1]), self.n_inst, thick, cv2.LINE_8, _SHIFT)

    def shadow(self, half_width):
        if self.style.shadow < 1:
            x0, y0, s = self.frame
            cv2.ellipse(self.img, (int(x0 * _ONE), int(y0 * _ONE)),
                        (int(half_width * 1.1 * s * _ONE), int(0.2 * s * _ONE)), 0, 0, 360,
                        (30, 30, 30), -1, cv2.LINE_AA, _SHIFT)

    def draw(self, obj: Obj) -> None:
        if obj.z < 1.5:
            return
        self.frame = self._frame(obj)
        x0, y0, s = self.frame
        W = self.img.shape[1]
        if x0 + 30 * s < 0 or x0 - 30 * s > W:
            return
        self.n_inst += 1
        # Two-wheelers grow whole, rider included, about the ground point; sign posts and
        # traffic lights only in their plates and boxes (``_signpost``, ``_lightpost``).
        whole = obj.kind in ('bicycle', 'motorcycle')
        with self.magnified(MAGNIFY[obj.kind]) if whole else nullcontext():
            getattr(self, '_' + obj.kind)(obj, **obj.params)

    @contextmanager
    def magnified(self, factor: float, u: float = 0.0, v: float = 0.0):
        """Draw the enclosed parts ``factor`` times larger about the local point (u, v)."""
        saved = x0, y0, s = self.frame
        self.frame = (x0 + u * s * (1 - factor), y0 - v * s * (1 - factor), s * factor)
        try:
            yield
        finally:
            self.frame = saved

    # --- things ---
    def _person(self, obj, h, rider_of=None, cls=PERSON):
        p, rng = self.palette, self.rng
        top, trousers = p.pick(self.style.clothes), p.pick(self.style.clothes)
        skin = p.pick(_SKIN, -self.style.color_jitter / 2)
        step = rng.uniform(-0.12, 0.12)
        hip, shoulder = 0.52 * h, 0.82 * h
        self.poly([(-0.12, hip), (-0.02, hip), (-0.04 - step, 0), (-0.13 - step, 0)], trousers, cls)
        self.poly([(0.02, hip), (0.12, hip), (0.13 + step, 0), (0.04 + step, 0)], trousers, cls)
        self.poly([(-0.17, hip - 0.04), (0.17, hip - 0.04), (0.2, shoulder), (-0.2, shoulder)],
                  top, cls)
        self.poly([(-0.25, shoulder), (-0.18, shoulder), (-0.2, hip), (-0.26, hip)], top, cls)
        self.poly([(0.18, shoulder), (0.25, shoulder), (0.26, hip), (0.2, hip)], top, cls)
        self.disc(0, shoulder + 0.1 * h * 0.9, 0.07 * h, skin, cls)

    def _rider(self, seat_u, seat_v, facing, bike_cls):
        p = self.palette
        top, trousers = p.pick(self.style.liveries['rider']), p.pick(self.style.clothes)
        skin = p.pick(_SKIN, -self.style.color_jitter / 2)
        f = facing
        hip = (seat_u, seat_v + 0.05)
        shoulder = (seat_u + 0.25 * f, seat_v + 0.65)
        self.poly([(hip[0] - 0.13, hip[1]), (hip[0] + 0.13, hip[1]),
                   (shoulder[0] + 0.15, shoulder[1]), (shoulder[0] - 0.15, shoulder[1])],
                  top, RIDER)
        self.line(hip, (seat_u + 0.3 * f, seat_v - 0.2), 0.13, trousers, RIDER)
        self.line((seat_u + 0.3 * f, seat_v - 0.2), (seat_u + 0.15 * f, 0.25), 0.11, trousers,
                  RIDER)
        self.line(shoulder, (seat_u + 0.6 * f, seat_v + 0.25), 0.09, top, RIDER)
        self.disc(shoulder[0] + 0.05 * f, shoulder[1] + 0.17, 0.11, skin, RIDER)

    def _bicycle(self, obj, facing, rider=False, view=None):
        metal, dark = self.palette.pick(self.style.liveries['bicycle']), self.palette((30, 30, 32))
        f, r = facing, 0.34
        rear, front = (-0.52 * f, r), (0.52 * f, r)
        crank, seat, head = (0.0, 0.32), (-0.15 * f, 0.88), (0.38 * f, 0.86)
        # The wheels are labelled whole, spokes included, as Cityscapes' polygons take them;
        # tyres and tubes are thick enough to survive the small scale's 1/4-resolution logits.
        spokes = self.palette((150, 152, 156))
        for hub in (rear, front):
            self.disc(*hub, r, spokes, BICYCLE)
            self.disc(*hub, r, dark, BICYCLE, ring=0.08)
        for a, b in ((rear, crank), (crank, seat), (seat, rear), (crank, head), (seat, head),
                     (head, front)):
            self.line(a, b, 0.08, metal, BICYCLE)
        self.line(head, (head[0] - 0.05 * f, 1.0), 0.07, metal, BICYCLE)
        if rider:
            self._rider(seat[0], seat[1], f, BICYCLE)

    def _motorcycle(self, obj, facing, rider=False, view=None):
        paint, dark = (self.palette.pick(self.style.liveries['motorcycle']),
                       self.palette((26, 26, 28)))
        f, r = facing, 0.32
        for u in (-0.68 * f, 0.68 * f):
            self.disc(u, r, r, dark, MOTORCYCLE)
            self.disc(u, r, r * 0.45, self.palette(self.style.metal), MOTORCYCLE)
        body = [(-0.85 * f, 0.55), (-0.2 * f, 0.75), (0.35 * f, 0.82), (0.55 * f, 0.6),
                (0.3 * f, 0.3), (-0.3 * f, 0.3)]
        self.poly(body, paint, MOTORCYCLE)
        self.line((0.5 * f, 0.7), (0.68 * f, r), 0.07, self.palette(self.style.metal), MOTORCYCLE)
        self.line((0.5 * f, 0.7), (0.45 * f, 1.05), 0.06, dark, MOTORCYCLE)
        if rider:
            self._rider(-0.25 * f, 0.8, f, MOTORCYCLE)

    def _wheels(self, us, r, cls):
        tyre, hub = self.palette((24, 24, 26)), self.palette(self.style.metal)
        for u in us:
            self.disc(u, r, r, tyre, cls)
            self.disc(u, r, r * 0.45, hub, cls)

    def _car(self, obj, view='rear', facing=1, rider=None):
        paint, glass = self.palette.pick(self.style.paints), self.palette.pick(self.style.windows)
        dark = self.palette((28, 28, 30))
        if view == 'rear':
            w, h = self.rng.uniform(0.85, 0.95), self.rng.uniform(1.4, 1.6)
            self.shadow(w)
            self.rect(-w * 0.95, 0, -w * 0.6, 0.3, dark, CAR)
            self.rect(w * 0.6, 0, w * 0.95, 0.3, dark, CAR)
            self.poly([(-w, 0.22), (w, 0.22), (w, 0.55 * h), (w * 0.92, 0.62 * h),
                       (-w * 0.92, 0.62 * h), (-w, 0.55 * h)], paint, CAR)
            self.poly([(-w * 0.9, 0.6 * h), (w * 0.9, 0.6 * h), (w * 0.66, h), (-w * 0.66, h)],
                      paint, CAR)
            self.poly([(-w * 0.8, 0.64 * h), (w * 0.8, 0.64 * h), (w * 0.64, 0.94 * h),
                       (-w * 0.64, 0.94 * h)], glass, None)
            red = self.palette((190, 30, 30))
            self.rect(-w * 0.95, 0.4 * h, -w * 0.7, 0.5 * h, red, None)
            self.rect(w * 0.7, 0.4 * h, w * 0.95, 0.5 * h, red, None)
            self.rect(-0.25, 0.24 * h, 0.25, 0.34 * h, self.palette((230, 230, 230)), None)
        else:
            L = self.rng.uniform(2.0, 2.4) * facing
            self.poly([(-L, 0.3), (L, 0.3), (L * 1.02, 0.7), (L * 0.9, 0.82), (-L, 0.85)],
                      paint, CAR)
            self.poly([(-L * 0.62, 0.82), (-L * 0.42, 1.42), (L * 0.3, 1.42), (L * 0.58, 0.82)],
                      paint, CAR)
            self.poly([(-L * 0.55, 0.86), (-L * 0.4, 1.34), (L * 0.27, 1.34), (L * 0.5, 0.86)],
                      glass, None)
            self._wheels((-L * 0.62, L * 0.62), 0.32, CAR)

    def _truck(self, obj, view='rear', facing=1, rider=None):
        box = self.palette.pick(self.style.liveries['truck'])
        dark = self.palette((30, 30, 32))
        h = self.rng.uniform(3.0, 3.8)
        if view == 'rear':
            w = 1.25
            self.shadow(w)
            self.rect(-w * 0.95, 0, -w * 0.45, 0.55, dark, TRUCK)
            self.rect(w * 0.45, 0, w * 0.95, 0.55, dark, TRUCK)
            self.rect(-w * 0.8, 0.45, w * 0.8, 1.0, dark, TRUCK)
            self.rect(-w, 0.95, w, h, box, TRUCK)
            self.line((0, 1.0), (0, h - 0.05), 0.04, box * 0.6, None)
            for v in (1.6, 2.3):
                self.line((-w * 0.9, v), (w * 0.9, v), 0.03, box * 0.7, None)
        else:
            L = self.rng.uniform(3.5, 5.0) * facing
            cab = self.palette.pick(self.style.liveries['truck'])
            glass = self.palette.pick(self.style.windows)
            self.rect(-L, 0.5, L, 1.0, dark, TRUCK)
            self.rect(-L, 1.0, L - 2.4 * facing, h, box, TRUCK)
            self.poly([(L - 2.2 * facing, 0.6), (L, 0.6), (L, 2.2), (L - 0.4 * facing, 2.9),
                       (L - 2.2 * facing, 2.9)], cab, TRUCK)
            self.rect(L - 1.2 * facing, 1.8, L - 0.3 * facing, 2.6, glass, None)
            self._wheels((-L * 0.8, -L * 0.58, L - 1.2 * facing), 0.5, TRUCK)

    def _bus(self, obj, view='rear', facing=1, rider=None):
        paint = self.palette.pick(self.style.liveries['bus'])
        glass = self.palette.pick(self.style.windows)
        dark = self.palette((28, 28, 30))
        h = self.rng.uniform(3.0, 3.25)
        if view == 'rear':
            w = 1.27
            self.shadow(w)
            self.rect(-w * 0.9, 0, w * 0.9, 0.35, dark, BUS)
            self.poly([(-w, 0.3), (w, 0.3), (w, h - 0.15), (w - 0.15, h), (-w + 0.15, h),
                       (-w, h - 0.15)], paint, BUS)
            self.rect(-w * 0.85, 2.0, w * 0.85, h - 0.25, glass, None)
            self.rect(-w * 0.6, 0.9, w * 0.6, 1.6, paint * 0.75, None)
        else:
            L = self.rng.uniform(5.5, 6.3) * facing
            self.poly([(-L, 0.35), (L, 0.35), (L, h - 0.2), (L - 0.2 * facing, h), (-L, h)],
                      paint, BUS)
            self.rect(-L * 0.95, 1.6, L * 0.97, 2.7, glass, None)
            for u in np.arange(-abs(L) * 0.95, abs(L) * 0.97, 1.4):
                self.line((u, 1.6), (u, 2.7), 0.12, paint, None)
            for u in (L * 0.8, 0.0):
                self.rect(u - 0.5, 0.4, u + 0.5, 2.7, glass * 0.8, None)
            self._wheels((-L * 0.7, L * 0.72), 0.5, BUS)

    def _train(self, obj, view='rear', facing=1, rider=None):
        paint = self.palette.pick(self.style.liveries['train'])
        glass = self.palette.pick(self.style.windows)
        dark = self.palette((26, 26, 28))
        metal = self.palette(self.style.metal)
        h = self.rng.uniform(3.4, 3.7)
        if view == 'rear':
            w = 1.32
            self.rect(-w * 0.9, 0.1, w * 0.9, 0.7, dark, TRAIN)
            self.poly([(-w, 0.6), (w, 0.6), (w * 0.95, h - 0.2), (w * 0.8, h), (-w * 0.8, h),
                       (-w * 0.95, h - 0.2)], paint, TRAIN)
            self.rect(-w * 0.85, 1.7, w * 0.85, h - 0.5, glass, None)
            self.line((-0.5, h + 0.6), (0.4, h), 0.05, metal, TRAIN)
            self.line((-0.5, h + 0.6), (0.5, h + 0.6), 0.05, metal, TRAIN)
        else:
            n_cars = int(self.rng.integers(2, 5))
            car_len = self.rng.uniform(9.0, 12.0)
            L = n_cars * car_len / 2
            self.rect(-L, 0.15, L, 0.8, dark, TRAIN)
            for k in range(n_cars):
                u0 = -L + k * car_len + 0.25
                self.rect(u0, 0.6, u0 + car_len - 0.5, h, paint, TRAIN)
                self.rect(u0 + 0.3, 1.5, u0 + car_len - 0.8, 2.6, glass, None)
                for u in np.arange(u0 + 1.2, u0 + car_len - 0.8, 1.2):
                    self.line((u, 1.5), (u, 2.6), 0.1, paint, None)
                self.rect(u0 + car_len / 2 - 0.6, 0.7, u0 + car_len / 2 + 0.6, 2.7, glass * 0.7,
                          None)
            u = L * facing * 0.8
            self.line((u - 0.8, h + 0.7), (u, h), 0.05, metal, TRAIN)
            self.line((u - 0.8, h + 0.7), (u + 0.4, h + 0.7), 0.05, metal, TRAIN)

    def _tree(self, obj, trunk, crown):
        bark = self.palette((84, 64, 48))
        self.rect(-0.14, 0, 0.14, trunk + crown * 0.5, bark, VEGETATION)
        veg = self.palette(self.style.vegetation)
        for _ in range(4):
            du, dv = self.rng.uniform(-0.5, 0.5, 2) * crown
            shade = veg * self.rng.uniform(0.7, 1.2)
            r = crown * self.rng.uniform(0.55, 0.85)
            self.disc(du, trunk + crown + dv, r, np.clip(shade, 0, 255), VEGETATION)

    def _lamp(self, obj, h, side):
        metal = self.palette(self.style.metal)
        self.rect(-0.07, 0, 0.07, h, metal, POLE)
        self.line((0, h), (-side * 1.4, h + 0.25), 0.08, metal, POLE)
        self.rect(-side * 1.4 - 0.25, h, -side * 1.4 + 0.25, h + 0.2, metal, POLE)

    def _signpost(self, obj, h, n, shape):
        metal = self.palette(self.style.metal)
        self.rect(-0.05, 0, 0.05, h, metal, POLE)
        m = MAGNIFY['signpost']
        for k in range(n):
            v = h - 0.1 - k * 0.8 * m
            with self.magnified(m, 0.0, v):
                self._sign(v, (shape + k) % 4)

    def _sign(self, v, shape):
        red, blue, yellow = (self.palette(c) for c in self.style.liveries['sign'])
        white = self.palette((235, 235, 235))
        r = 0.33
        if shape == 0:
            self.disc(0, v - r, r, red, SIGN)
            self.disc(0, v - r, r * 0.72, white, SIGN)
        elif shape == 1:
            self.poly([(-r, v - 2 * r), (r, v - 2 * r), (0, v)], red, SIGN)
            self.poly([(-r * 0.62, v - 1.8 * r), (r * 0.62, v - 1.8 * r), (0, v - 0.55 * r)],
                      white, SIGN)
        elif shape == 2:
            self.rect(-r, v - 2 * r, r, v, blue, SIGN)
            self.line((0, v - 1.6 * r), (0, v - 0.4 * r), 0.08, white, SIGN)
        else:
            self.rect(-0.45, v - 0.35, 0.45, v, yellow, SIGN)
            self.rect(-0.4, v - 0.3, 0.4, v - 0.05, yellow * 0.8, SIGN)

    def _lightpost(self, obj, h, arm=False):
        metal = self.palette(self.style.metal)
        self.rect(-0.08, 0, 0.08, h, metal, POLE)
        u = 0.0
        if arm:
            u = -np.sign(obj.x) * self.scene.road_half * 0.7
            self.line((0, h - 0.1), (u, h - 0.1), 0.12, metal, POLE)
        box = self.palette((36, 38, 36))
        top = h + (0.0 if not arm else -0.15)
        lit = int(self.rng.integers(3))
        with self.magnified(MAGNIFY['lightpost'], u, top):
            self.rect(u - 0.17, top - 0.95, u + 0.17, top, box, LIGHT)
            for k, rgb in enumerate(((220, 40, 30), (230, 170, 30), (40, 200, 90))):
                col = self.palette(rgb) * (1.0 if k == lit else 0.3)
                self.disc(u, top - 0.17 - 0.3 * k, 0.09, col, None)

    def _static(self, obj, shape):
        col = self.palette.pick(((60, 80, 60), (90, 90, 94), (110, 80, 50)))
        if shape == 0:
            self.rect(-0.3, 0, 0.3, 1.0, col, STATIC)
        elif shape == 1:
            self.rect(-0.9, 0.4, 0.9, 0.5, col, STATIC)
            self.rect(-0.8, 0, -0.7, 0.45, col, STATIC)
            self.rect(0.7, 0, 0.8, 0.45, col, STATIC)
            self.rect(-0.9, 0.55, 0.9, 0.8, col, STATIC)
        else:
            self.rect(-0.1, 0, 0.1, 0.9, col, STATIC)


def _ego_hood(img, code, rng):
    """The car's bonnet across the bottom rows, as in every Cityscapes frame."""
    H, W = code.shape
    xs = np.arange(W)
    top = H * (0.91 + 0.08 * ((xs - W / 2) / (0.62 * W)) ** 2) + rng.uniform(-0.3, 0.3)
    rows = np.arange(H)[:, None]
    m = rows >= top[None]
    code[m] = EGO
    shade = np.clip(1 - (rows - top[None]) / (0.1 * H), 0, 1)[..., None]
    img[m] = (np.array([26, 28, 32], np.float32) + 70 * shade * np.array([1, 1, 1.1]))[m]


def _camera(img: np.ndarray, style: Style, rng: np.random.Generator) -> np.ndarray:
    """Tone, colour, vignetting, blur and sensor noise of the domain's 'camera'."""
    x = np.clip(img / 255.0, 0, 1) ** rng.uniform(*style.gamma)
    x = x * rng.uniform(*style.gain) * np.asarray(style.tint, np.float32)
    grey = x.mean(axis=2, keepdims=True)
    x = grey + style.saturation * (x - grey)
    x = 0.5 + style.contrast * (x - 0.5)
    if style.vignette:
        H, W = x.shape[:2]
        yy, xx = np.mgrid[0:H, 0:W]
        r2 = ((xx - W / 2) / (W / 2)) ** 2 + ((yy - H / 2) / (H / 2)) ** 2
        x *= (1 - style.vignette * r2 / 2)[..., None]
    x = (x * 255).astype(np.float32)
    if style.blur_sigma:
        x = cv2.GaussianBlur(x, (0, 0), style.blur_sigma)
    if style.noise_sigma:
        x += rng.normal(0, style.noise_sigma, x.shape).astype(np.float32)
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)
