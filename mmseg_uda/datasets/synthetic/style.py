"""Domain appearance: palettes, texture strength, lighting, and camera effects.

The three styles share the layout sampler and differ only here, the way a game engine, a
simpler renderer and a car camera differ: "gta" is sunny, saturated and sharp; "synthia" is a flat
pastel render without terrain, trucks or trains; "cityscapes" is overcast, muted, blurred and
noisy, and the ego car's bonnet fills the bottom rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..label_maps import SYNTHIA_ABSENT_TRAINIDS

RGB = tuple[float, float, float]


@dataclass(frozen=True)
class Style:
    name: str
    road: RGB
    marking: RGB
    sidewalk: RGB
    kerb: RGB
    terrain: RGB
    vegetation: RGB
    sky_horizon: RGB
    sky_zenith: RGB
    cloud: RGB
    cloudiness: tuple[float, float]   # fraction of sky covered, range
    facades: tuple[RGB, ...]
    walls: tuple[RGB, ...]
    fences: tuple[RGB, ...]
    windows: tuple[RGB, ...]
    paints: tuple[RGB, ...]           # vehicles
    clothes: tuple[RGB, ...]
    metal: RGB                        # poles, frames
    color_jitter: float               # per-image, per-material RGB jitter (0-255 units)
    texture: float                    # texture contrast multiplier
    shadow: float                     # ground brightness in a facade's shadow (1: none)
    gain: tuple[float, float]
    gamma: tuple[float, float]
    saturation: float
    contrast: float
    tint: RGB
    blur_sigma: float
    noise_sigma: float
    vignette: float
    ego_hood: bool
    absent: tuple[int, ...] = ()      # train ids this domain never shows
    # Colours of the tail classes' objects (truck, bus, train, motorcycle, bicycle, rider,
    # sign), none of them a car paint: a tail class is rare, not also indistinguishable, so
    # that the instrument measures what long-tail methods address (docs/data.md).
    liveries: dict = field(default_factory=dict)


# The GTA-like liveries; the other styles take them toward their own look (``_toward``).
LIVERIES = dict(
    truck=((236, 236, 232), (232, 124, 24)),
    bus=((236, 200, 36), (204, 36, 36)),
    train=((24, 150, 150), (124, 64, 176)),
    motorcycle=((240, 72, 24), (150, 210, 32)),
    bicycle=((0, 190, 230), (250, 64, 160)),
    rider=((244, 232, 40), (250, 144, 20)),
    sign=((214, 24, 30), (24, 80, 204), (250, 204, 0)),
)


def _toward(liveries: dict, grey: float, amount: float) -> dict:
    """Each livery colour moved ``amount`` of the way to ``grey`` (0: unchanged)."""
    return {k: tuple(tuple(round(c + (grey - c) * amount) for c in rgb) for rgb in v)
            for k, v in liveries.items()}


GTA = Style(
    name='gta',
    road=(96, 92, 88), marking=(236, 232, 220), sidewalk=(176, 164, 148), kerb=(205, 198, 186),
    terrain=(142, 150, 72), vegetation=(66, 124, 42),
    sky_horizon=(196, 218, 240), sky_zenith=(72, 132, 222), cloud=(245, 245, 248),
    cloudiness=(0.0, 0.35),
    facades=((204, 172, 128), (172, 88, 66), (218, 206, 184), (150, 150, 156), (124, 94, 72),
             (232, 226, 214), (188, 120, 90), (160, 170, 180)),
    walls=((190, 160, 120), (160, 86, 66), (200, 192, 172), (140, 140, 146)),
    fences=((112, 100, 88), (150, 150, 152), (96, 64, 40)),
    windows=((48, 62, 84), (120, 160, 190), (30, 34, 40)),
    paints=((120, 28, 40), (36, 50, 120), (196, 186, 156), (25, 25, 28), (170, 172, 176),
            (30, 100, 56), (96, 70, 52), (90, 96, 104)),
    clothes=((200, 40, 40), (40, 70, 160), (240, 240, 240), (30, 30, 30), (230, 190, 40),
             (60, 140, 70), (150, 90, 50)),
    metal=(120, 124, 128), color_jitter=14, texture=1.0, shadow=0.62,
    gain=(0.95, 1.12), gamma=(0.9, 1.05), saturation=1.2, contrast=1.1, tint=(1.05, 1.0, 0.92),
    blur_sigma=0.0, noise_sigma=2.0, vignette=0.0, ego_hood=False, liveries=LIVERIES)

SYNTHIA = Style(
    name='synthia',
    road=(118, 112, 110), marking=(250, 250, 250), sidewalk=(198, 180, 196), kerb=(220, 214, 220),
    terrain=(150, 170, 90), vegetation=(92, 168, 84),
    sky_horizon=(210, 226, 246), sky_zenith=(136, 178, 236), cloud=(250, 250, 252),
    cloudiness=(0.0, 0.2),
    facades=((232, 182, 170), (168, 212, 200), (236, 222, 158), (190, 190, 222), (212, 212, 212),
             (220, 160, 200), (160, 190, 230), (240, 200, 150)),
    walls=((220, 190, 180), (180, 210, 200), (210, 210, 200), (200, 190, 220)),
    fences=((140, 140, 170), (190, 170, 130), (120, 150, 120)),
    windows=((90, 110, 160), (60, 80, 120), (170, 200, 230)),
    paints=((150, 60, 80), (70, 80, 130), (200, 190, 170), (180, 200, 220), (60, 60, 70),
            (90, 110, 160), (120, 90, 140), (110, 150, 110)),
    clothes=((230, 80, 80), (80, 110, 230), (250, 250, 250), (60, 60, 60), (240, 220, 60),
             (90, 200, 120), (200, 120, 220)),
    metal=(150, 150, 165), color_jitter=20, texture=0.45, shadow=1.0,
    gain=(0.72, 1.15), gamma=(0.85, 1.25), saturation=1.0, contrast=1.0, tint=(1.0, 1.0, 1.0),
    blur_sigma=0.45, noise_sigma=0.0, vignette=0.0, ego_hood=False, absent=SYNTHIA_ABSENT_TRAINIDS,
    liveries=_toward(LIVERIES, 230, 0.3))

# Tuned so that a small CNN trained from scratch on the GTA-like source keeps about 60 % of its
# source mIoU on this target, close to DAFormer's source-only 45.6 vs 77 oracle (docs/data.md).
CITYSCAPES = Style(
    name='cityscapes',
    road=(82, 84, 90), marking=(196, 198, 200), sidewalk=(134, 128, 134), kerb=(152, 150, 150),
    terrain=(104, 114, 66), vegetation=(62, 108, 44),
    sky_horizon=(214, 224, 236), sky_zenith=(150, 180, 222), cloud=(232, 234, 238),
    cloudiness=(0.2, 0.7),
    facades=((150, 140, 124), (126, 96, 82), (172, 166, 156), (110, 110, 116), (140, 120, 100),
             (186, 180, 170), (132, 110, 96), (120, 126, 132)),
    walls=((140, 132, 120), (120, 96, 84), (160, 156, 148), (104, 104, 110)),
    fences=((90, 88, 84), (120, 120, 122), (80, 62, 48)),
    windows=((40, 46, 54), (84, 96, 108), (26, 28, 32)),
    paints=((120, 30, 34), (36, 50, 96), (150, 140, 90), (170, 160, 150), (28, 28, 30),
            (130, 132, 136), (40, 70, 50), (90, 92, 96)),
    clothes=((110, 40, 44), (40, 52, 90), (190, 190, 190), (28, 28, 30), (140, 120, 70),
             (60, 80, 60), (100, 76, 60)),
    metal=(100, 102, 106), color_jitter=12, texture=0.8, shadow=1.0,
    gain=(0.88, 1.08), gamma=(0.95, 1.05), saturation=0.9, contrast=1.0, tint=(0.95, 1.0, 1.05),
    blur_sigma=0.7, noise_sigma=4.0, vignette=0.25, ego_hood=True,
    liveries=_toward(LIVERIES, 120, 0.4))

STYLES = {s.name: s for s in (GTA, SYNTHIA, CITYSCAPES)}
