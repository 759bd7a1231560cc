"""Street-scene layouts: where the road, facades, vehicles and people are, in metres.

A layout is sampled independently of the domain, so the three synthetic domains share their
layout statistics and differ only in appearance (see ``style.py``). The camera looks along a
street (+Z) from ``cam_height`` metres; X is lateral (right positive), Y is height.

The numbers below set the class frequencies. They were tuned so that the 19 classes follow a long
tail close to GTA5's (docs/data.md compares them).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Internal label codes: 0..18 are the Cityscapes train ids; the rest become each data set's own
# void ids when written (``io.py``).
(ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, LIGHT, SIGN, VEGETATION, TERRAIN, SKY, PERSON,
 RIDER, CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE) = range(19)
UNLABELED, STATIC, EGO, MARKING, RAIL = 200, 201, 202, 203, 204

# Facade segment kinds along each side of the street.
GAP, SEG_BUILDING, SEG_WALL, SEG_FENCE, SEG_VEGETATION = range(5)


@dataclass
class Camera:
    focal: float      # pixels
    horizon: float    # image row of the horizon
    vp_x: float       # image column of the vanishing point
    height: float     # metres above the road
    x: float          # lateral position, metres


@dataclass
class Segments:
    """Piecewise-constant facade along the street: segment i covers [start[i], start[i+1])."""
    start: np.ndarray   # metres along Z (or along X for the end facade), increasing
    kind: np.ndarray    # GAP / SEG_*
    height: np.ndarray  # metres
    tone: np.ndarray    # index into the domain's palette for that kind
    window: np.ndarray  # window style (0: none), buildings only

    def index(self, pos: np.ndarray) -> np.ndarray:
        return np.clip(np.searchsorted(self.start, pos, side='right') - 1, 0, len(self.start) - 1)


@dataclass
class Side:
    sidewalk: float     # width, metres
    terrain: float      # width of the grass strip beyond the sidewalk (0: none)
    near: Segments      # facade at distance ``facade_x``
    back: Segments      # taller facade ``back_offset`` metres behind
    back_offset: float

    @property
    def facade_dist(self) -> float:
        return self.sidewalk + self.terrain


@dataclass
class Obj:
    """A billboard object: ``kind`` names its drawing; X, Z its ground position in metres."""
    kind: str
    x: float
    z: float
    params: dict = field(default_factory=dict)


@dataclass
class Scene:
    cam: Camera
    road_half: float
    lane_width: float
    left: Side
    right: Side
    end_z: float | None            # a cross facade closing the street, or None
    end: Segments | None
    crossing: tuple[float, float] | None   # (z, width) of a cross street
    shadow_x: float                # ground with X < shadow_x lies in a facade's shadow
    rails_x: float | None          # tram rails along the street
    objects: list[Obj]
    seed_render: int


# --- sampling ------------------------------------------------------------------------------

def _segments(rng: np.random.Generator, length: float, kinds: list[int], probs: list[float],
              heights: dict[int, tuple[float, float]], seg_len: tuple[float, float],
              n_tones: int = 8) -> Segments:
    start, kind, height, tone, window = [], [], [], [], []
    pos = 0.0
    while pos < length:
        k = int(rng.choice(kinds, p=probs))
        start.append(pos)
        kind.append(k)
        lo, hi = heights.get(k, (0.0, 0.0))
        height.append(rng.uniform(lo, hi))
        tone.append(rng.integers(n_tones))
        window.append(rng.integers(1, 4) if k == SEG_BUILDING else 0)
        pos += rng.uniform(*seg_len) * (0.6 if k in (SEG_WALL, SEG_FENCE) else 1.0)
    return Segments(np.asarray(start), np.asarray(kind), np.asarray(height),
                    np.asarray(tone), np.asarray(window))


def _side(rng: np.random.Generator, length: float) -> Side:
    near = _segments(
        rng, length,
        kinds=[SEG_BUILDING, SEG_WALL, SEG_FENCE, SEG_VEGETATION, GAP],
        probs=[0.47, 0.24, 0.12, 0.10, 0.07],
        heights={SEG_BUILDING: (6.0, 20.0), SEG_WALL: (1.5, 3.8), SEG_FENCE: (1.2, 2.4),
                 SEG_VEGETATION: (2.0, 6.0)},
        seg_len=(8.0, 30.0))
    back = _segments(
        rng, length * 1.5,
        kinds=[SEG_BUILDING, SEG_VEGETATION, GAP],
        probs=[0.62, 0.22, 0.16],
        heights={SEG_BUILDING: (8.0, 26.0), SEG_VEGETATION: (6.0, 12.0)},
        seg_len=(10.0, 40.0))
    terrain = rng.uniform(3.0, 9.0) if rng.random() < 0.6 else 0.0
    return Side(sidewalk=rng.uniform(2.5, 5.5), terrain=terrain, near=near, back=back,
                back_offset=rng.uniform(6.0, 20.0))


def sample_scene(rng: np.random.Generator, width: int, height: int) -> Scene:
    """Draw one street layout for an image of ``width`` x ``height`` pixels."""
    cam = Camera(focal=width * rng.uniform(0.74, 0.86),
                 horizon=height * rng.uniform(0.40, 0.47),
                 vp_x=width * rng.uniform(0.44, 0.56),
                 height=rng.uniform(1.4, 1.8),
                 x=0.0)
    n_lanes = int(rng.choice([2, 3, 4], p=[0.5, 0.25, 0.25]))
    lane_width = rng.uniform(3.0, 3.6)
    road_half = n_lanes * lane_width / 2
    cam.x = rng.uniform(-0.45, 0.45) * road_half
    length = 300.0
    left, right = _side(rng, length), _side(rng, length)

    end_z, end = None, None
    if rng.random() < 0.55:
        end_z = rng.uniform(60.0, 220.0)
        end = _segments(rng, 400.0, [SEG_BUILDING, SEG_VEGETATION], [0.8, 0.2],
                        {SEG_BUILDING: (6.0, 24.0), SEG_VEGETATION: (5.0, 12.0)},
                        seg_len=(10.0, 40.0))
        end.start = end.start - 200.0   # covers X in [-200, 200]
    crossing = None
    if rng.random() < 0.5:
        crossing = (rng.uniform(18.0, 60.0), rng.uniform(9.0, 16.0))
        if end_z is not None and end_z < crossing[0] + crossing[1] + 10:
            end_z += crossing[0] + crossing[1]

    scene = Scene(cam, road_half, lane_width, left, right, end_z, end, crossing,
                  shadow_x=-road_half - 10.0, rails_x=None, objects=[],
                  seed_render=int(rng.integers(2**31)))
    if rng.random() < 0.5:   # sunny side: a band of the street in the left facades' shadow
        scene.shadow_x = rng.uniform(-road_half - left.sidewalk, road_half)
    scene.objects = _sample_objects(rng, scene)
    # Trams ahead run on rails in their lane.
    scene.rails_x = next((o.x for o in scene.objects
                          if o.kind == 'train' and o.params['view'] == 'rear'), None)
    return scene


def _far_limit(scene: Scene) -> float:
    return min(scene.end_z or 150.0, 150.0)


def _lane_centres(scene: Scene) -> np.ndarray:
    n = int(round(2 * scene.road_half / scene.lane_width))
    return -scene.road_half + scene.lane_width * (np.arange(n) + 0.5)


def _sample_objects(rng: np.random.Generator, scene: Scene) -> list[Obj]:
    objs: list[Obj] = []
    far = _far_limit(scene)
    rh = scene.road_half
    lanes = _lane_centres(scene)

    def free_z(z: float) -> bool:   # keep objects out of the cross street's mouth
        c = scene.crossing
        return c is None or not (c[0] - 1 < z < c[0] + c[1] + 1)

    for sign_x, side in ((-1, scene.left), (1, scene.right)):
        kerb = sign_x * rh
        # Trees along the sidewalk or grass strip.
        if rng.random() < 0.45:
            tx = sign_x * (rh + side.sidewalk * 0.75 + side.terrain * 0.5)
            for z in np.arange(rng.uniform(4, 14), far, rng.uniform(7, 16)):
                if free_z(z) and rng.random() < 0.85:
                    objs.append(Obj('tree', tx, z, dict(trunk=rng.uniform(2.0, 3.2),
                                                        crown=rng.uniform(1.4, 2.8))))
        # Poles: street lamps, sign posts, and (sometimes) traffic lights.
        for z in np.arange(rng.uniform(3, 18), far, rng.uniform(16, 32)):
            if not free_z(z):
                continue
            px = kerb + sign_x * rng.uniform(0.3, 0.6)
            u = rng.random()
            # Sign posts and traffic lights are drawn larger than life (render.MAGNIFY) and
            # placed as many times more rarely; the slots they leave stay empty.
            if u < 0.60:
                objs.append(Obj('lamp', px, z, dict(h=rng.uniform(4.5, 7.5), side=sign_x)))
            elif u < 0.624:
                objs.append(Obj('signpost', px, z, dict(h=rng.uniform(2.6, 3.4),
                                                        n=1 + int(rng.random() < 0.2),
                                                        shape=int(rng.integers(4)))))
            elif u < 0.714:
                objs.append(Obj('lightpost', px, z, dict(h=rng.uniform(3.2, 4.5))))
        # Parked cars along the kerb, the odd parked truck or bus.
        if rng.random() < 0.45:
            for z in np.arange(rng.uniform(4, 10), min(far, 70), rng.uniform(5.5, 9)):
                if free_z(z) and rng.random() < 0.5:
                    u = rng.random()
                    kind = 'car' if u < 0.93 else ('truck' if u < 0.985 else 'bus')
                    objs.append(Obj(kind, kerb - sign_x * 1.2, z, dict(view='rear')))
        # People on the sidewalk.
        for _ in range(rng.poisson(1.4)):
            z = rng.uniform(4, 45)
            objs.append(Obj('person', sign_x * (rh + rng.uniform(0.4, side.sidewalk)), z,
                            dict(h=rng.uniform(1.55, 1.95))))
        # Street furniture (void).
        for _ in range(rng.poisson(0.7)):
            objs.append(Obj('static', sign_x * (rh + rng.uniform(0.3, side.sidewalk)),
                            rng.uniform(4, 40), dict(shape=int(rng.integers(3)))))
        # A parked bicycle or motorcycle on the sidewalk.
        # Two-wheelers are drawn 2x life size: motorcycles are placed 4x more rarely than at
        # life size, bicycles, whose solid wheels about double their area, half as often again.
        if rng.random() < 0.0195:
            kind = 'bicycle' if rng.random() < 0.33 else 'motorcycle'
            objs.append(Obj(kind, sign_x * (rh + rng.uniform(0.3, side.sidewalk)),
                            rng.uniform(5, 30), dict(facing=int(rng.choice([-1, 1])))))

    # Traffic in the lanes, seen from behind.
    for _ in range(rng.poisson(1.4)):
        z = rng.uniform(7, min(far, 90))
        if not free_z(z):
            continue
        u = rng.random()
        kind = 'car' if u < 0.80 else ('truck' if u < 0.93 else ('bus' if u < 0.985 else 'train'))
        x = float(rng.choice(lanes)) + rng.uniform(-0.3, 0.3)
        objs.append(Obj(kind, x, z, dict(view='rear')))
    # Two-wheelers on the road, almost always ridden, as rare as on the sidewalk.
    if rng.random() < 0.046:
        kind = 'bicycle' if rng.random() < 0.25 else 'motorcycle'
        x = float(rng.choice([lanes[0], lanes[-1]])) + rng.uniform(-0.8, 0.8)
        objs.append(Obj(kind, x, rng.uniform(6, 35), dict(facing=int(rng.choice([-1, 1])),
                                                           rider=rng.random() < 0.95)))
    # Cross-street traffic, seen from the side, and pedestrians on the zebra.
    if scene.crossing is not None:
        cz, cw = scene.crossing
        for _ in range(rng.poisson(0.9)):
            u = rng.random()
            kind = ('car' if u < 0.68 else 'truck' if u < 0.82 else 'bus' if u < 0.925
                    else 'train' if u < 0.955 else 'motorcycle' if u < 0.98 else 'bicycle')
            params = dict(view='side', facing=int(rng.choice([-1, 1])), rider=True)
            objs.append(Obj(kind, rng.uniform(-rh * 2.5, rh * 2.5),
                            cz + rng.uniform(0.25, 0.75) * cw, params))
        for _ in range(rng.poisson(0.8)):
            objs.append(Obj('person', rng.uniform(-rh, rh), cz - rng.uniform(1.5, 4.0),
                            dict(h=rng.uniform(1.55, 1.95))))
        for sign_x in (-1, 1):   # traffic lights at the corners, one over the road
            if rng.random() < 0.45:
                objs.append(Obj('lightpost', sign_x * (rh + 0.5), cz - 1.0,
                                dict(h=rng.uniform(3.2, 4.5), arm=rng.random() < 0.5)))
    return objs
