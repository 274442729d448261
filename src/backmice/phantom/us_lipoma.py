"""A family of B-mode frames of a subcutaneous lipoma, drawn directly in the image plane.

Each frame is one :class:`LipomaSpec`: a lipoma (an ellipse of fat iso- to
hyperechoic to the subcutaneous fat) with internal echogenic striations
parallel to the skin, a thin echogenic capsule of some contrast (sometimes
incomplete), at some depth, 8-50 mm long; sometimes an "iceberg" whose deep
part lies under the fascia, which is broken where it passes; posterior
acoustic enhancement; under gel and skin, over a fascia and fibrillar muscle,
with septa in the fat; speckle of a probe's frequency, attenuation left over
by the time-gain compensation and a time-gain curve, on one of several probes'
pixel sizes. :func:`random_spec` draws specs across these ranges and
:func:`render_lipoma` renders one with its exact truth (in the image plane,
from the analytic shapes, as ``measure_mask`` would report it).

The speckle and log compression are the scene renderer's
(:func:`backmice.phantom.ultrasound.bmode`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from backmice.phantom.tissues import Tissue
from backmice.phantom.ultrasound import ECHO, bmode, psf

__all__ = ["PIXEL_SIZES_MM", "LipomaFrame", "LipomaSpec", "random_spec", "render_lipoma"]

#: Pixel sizes (mm) of the probes the family draws from.
PIXEL_SIZES_MM = (0.06, 0.08, 0.1, 0.12, 0.15, 0.2)


@dataclass(frozen=True)
class LipomaSpec:
    """One lipoma frame.

    Attributes
    ----------
    long_mm, short_mm : float
        Diameters of the lipoma's fat core (inside the capsule).
    angle_deg : float
        Tilt of the long axis from the skin, toward depth.
    depth_mm : float
        Depth of the core's top below the skin surface.
    fat_mm : float
        Subcutaneous fat thickness at the lipoma (skin surface to fascia); for
        an iceberg the fascia crosses the core.
    lesion_echo : float
        Backscatter of the lipoma's fat over the subcutaneous fat's (below 1
        hypoechoic, 1 iso-, up to 2.5 hyperechoic).
    striations : int
        Number of echogenic lines inside, parallel to the skin.
    striation_echo : float
        Their backscatter over the lipoma's fat.
    capsule_echo : float
        Backscatter of the capsule over the subcutaneous fat's.
    capsule_mm : float
        Capsule thickness.
    capsule_gap_deg : float
        Arc without capsule (0: complete).
    enhancement : float
        Posterior acoustic enhancement: the lipoma's attenuation below the
        fat's, Np/mm (0 none).
    residual_loss : float
        Attenuation left by the time-gain compensation, Np/mm.
    tgc_ripple_db : float
        Amplitude of a slow ripple of the time-gain curve, dB.
    frequency_mhz : float
        Probe frequency (sets the speckle: axial and lateral resolution).
    pixel_mm : float
        Pixel size (square).
    gel_mm : float
        Gel (or stand-off) above the skin.
    septa : int
        Thin septa in the subcutaneous fat.
    """

    long_mm: float = 26.0
    short_mm: float = 9.0
    angle_deg: float = 0.0
    depth_mm: float = 5.0
    fat_mm: float = 20.0
    lesion_echo: float = 1.6
    striations: int = 4
    striation_echo: float = 8.0
    capsule_echo: float = 40.0
    capsule_mm: float = 0.7
    capsule_gap_deg: float = 0.0
    enhancement: float = 0.01
    residual_loss: float = 0.004
    tgc_ripple_db: float = 0.0
    frequency_mhz: float = 10.0
    pixel_mm: float = 0.1
    gel_mm: float = 0.5
    septa: int = 3

    @property
    def iceberg(self) -> bool:
        """True when the fascia crosses the core (its deep part lies under the fascia)."""
        return self.depth_mm + self.short_mm > self.fat_mm


def random_spec(rng: np.random.Generator) -> LipomaSpec:
    """A spec drawn across the family's ranges.

    The shares follow published sonographic series (Salmaso and Taricco,
    Radiol Med 1994, 90 soft-tissue lipomas; summaries of later series):
    oval with the long axis parallel to the skin (93 %), the striped pattern of
    echogenic lines parallel to the skin in about 70 % (here 2-8 lines in 70 %,
    0-1 otherwise), a capsule seen in about 30 % (here its backscatter is
    log-uniform over 3-100 times the fat's, so a third are faint, under 10
    times, and one in three has a gap), hypoechoic to the fat in about a
    quarter (0.6-0.9 times its backscatter), iso- to hyperechoic otherwise
    (0.9-2.5), better sound transmission (posterior enhancement) in a third;
    usually 1-3 cm, here 8-50 mm; one in five an "iceberg" through the fascia.
    """
    long_mm = float(rng.uniform(8.0, 50.0))
    short_mm = float(long_mm * rng.uniform(0.3, 0.6))
    short_mm = min(max(short_mm, 4.0), 22.0)
    depth = float(rng.uniform(2.0, 12.0))
    if rng.random() < 0.2:  # an iceberg: the fascia crosses the core's deep third
        fat = depth + short_mm * float(rng.uniform(0.55, 0.8))
    else:
        fat = depth + short_mm + float(rng.uniform(1.0, 8.0))
    gap = float(rng.choice([0.0, 0.0, rng.uniform(30.0, 100.0)]))
    hypo = rng.random() < 0.25
    striped = rng.random() < 0.7
    enhanced = rng.random() < 1 / 3
    return LipomaSpec(
        long_mm=round(long_mm, 2),
        short_mm=round(short_mm, 2),
        angle_deg=round(float(rng.uniform(-8.0, 8.0)), 1),
        depth_mm=round(depth, 2),
        fat_mm=round(fat, 2),
        lesion_echo=round(float(rng.uniform(0.6, 0.9) if hypo else rng.uniform(0.9, 2.5)), 2),
        striations=int(rng.integers(2, 9) if striped else rng.integers(0, 2)),
        striation_echo=round(float(rng.uniform(4.0, 15.0)), 1),
        capsule_echo=round(float(10 ** rng.uniform(0.5, 2.0)), 1),
        capsule_mm=round(float(rng.uniform(0.4, 1.0)), 2),
        capsule_gap_deg=round(gap, 1),
        enhancement=round(float(rng.uniform(0.01, 0.03)) if enhanced else 0.0, 3),
        residual_loss=round(float(rng.uniform(0.0, 0.015)), 4),
        tgc_ripple_db=round(float(rng.uniform(0.0, 3.0)), 2),
        frequency_mhz=round(float(rng.uniform(7.0, 15.0)), 1),
        pixel_mm=float(rng.choice(PIXEL_SIZES_MM)),
        gel_mm=round(float(rng.uniform(0.0, 1.5)), 2),
        septa=int(rng.integers(0, 5)),
    )


@dataclass
class LipomaFrame:
    """A rendered lipoma frame.

    Attributes
    ----------
    image : ndarray of uint8, shape (rows, cols)
        The tissue region (depth 0 is the transducer face).
    spacing_mm : (float, float)
        ``(row, col)`` pixel size.
    labels : ndarray of uint8, shape (rows, cols)
        :class:`~backmice.phantom.Tissue` of each pixel (the core is ``LESION_FAT``).
    truth : dict
        ``long_axis_mm``, ``short_axis_mm`` (the core's diameters),
        ``x_mm``, ``depth_mm`` (its centre), ``skin_depth_mm`` (from the skin
        surface to the core's nearest point), ``fascia_min_mm`` and
        ``fascia_max_mm`` (signed distance of the core's deepest and
        shallowest points to the fascia's superficial face, + superficial: the
        fascia gap is ``fascia_min_mm``), ``fascia_depth_mm`` (depth of the
        fascia below the centre), ``relation``, ``skin_line`` and
        ``fascia_line`` (``(col, row)`` per column), and the spec.
    """

    image: np.ndarray
    spacing_mm: tuple[float, float]
    labels: np.ndarray
    truth: dict


def _surfaces(spec: LipomaSpec, x: np.ndarray, centre_x: float) -> tuple[np.ndarray, np.ndarray]:
    """Depth (mm) of the skin surface and of the fascia's superficial face at lateral ``x``."""
    u = x - centre_x
    skin = spec.gel_mm + 0.0008 * u**2
    fascia = skin + spec.fat_mm + 0.04 * u + 0.0015 * u**2
    return skin, fascia


def _signed_to_curve(px: np.ndarray, py: np.ndarray, curve_x: np.ndarray, curve_y: np.ndarray):
    """Signed distance (mm) of points to a densely sampled curve: + above it (shallower)."""
    d = np.full(px.shape, np.inf)
    for start in range(0, len(curve_x), 2048):
        cx = curve_x[start : start + 2048]
        cy = curve_y[start : start + 2048]
        d = np.minimum(d, np.sqrt((px[:, None] - cx) ** 2 + (py[:, None] - cy) ** 2).min(axis=1))
    below = py > np.interp(px, curve_x, curve_y)
    return np.where(below, -d, d)


def render_lipoma(spec: LipomaSpec, *, seed: int = 0) -> LipomaFrame:
    """Render one lipoma frame with its truth (see :class:`LipomaFrame`)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 17]))
    step = float(spec.pixel_mm)
    width = max(40.0, spec.long_mm + 18.0)
    depth = max(25.0, spec.gel_mm + max(spec.fat_mm, spec.depth_mm + spec.short_mm) + 10.0)
    rows, cols = round(depth / step), round(width / step)
    y = (np.arange(rows) * step)[:, None]
    x = (np.arange(cols) * step)[None, :]
    cx = (cols - 1) * step / 2.0
    skin_y, fascia_y = _surfaces(spec, x[0], cx)
    a, b = spec.long_mm / 2.0, spec.short_mm / 2.0
    t = math.radians(spec.angle_deg)
    # The core's top is depth_mm below the skin: its centre's depth from the tilted extent.
    half_height = math.sqrt((a * math.sin(t)) ** 2 + (b * math.cos(t)) ** 2)
    cy = float(np.interp(cx, x[0], skin_y)) + spec.depth_mm + half_height
    u = (x - cx) * math.cos(t) + (y - cy) * math.sin(t)
    v = -(x - cx) * math.sin(t) + (y - cy) * math.cos(t)
    rho = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    core = rho <= 1.0
    # The capsule: a band of capsule_mm outside the core, minus an arc when incomplete.
    outer = np.sqrt((u / (a + spec.capsule_mm)) ** 2 + (v / (b + spec.capsule_mm)) ** 2) <= 1.0
    capsule = outer & ~core
    if spec.capsule_gap_deg > 0:
        phi = np.degrees(np.arctan2(v / b, u / a)) % 360.0
        start = float(rng.uniform(0.0, 360.0))
        capsule &= ((phi - start) % 360.0) > spec.capsule_gap_deg

    labels = np.full((rows, cols), Tissue.FAT, dtype=np.uint8)
    labels[y < skin_y[None, :]] = Tissue.GEL
    skin_thick = 1.8
    labels[(y >= skin_y[None, :]) & (y < skin_y[None, :] + skin_thick)] = Tissue.SKIN
    fascia_thick = float(rng.uniform(1.0, 2.0))
    fascia = (y >= fascia_y[None, :]) & (y < fascia_y[None, :] + fascia_thick)
    labels[y >= fascia_y[None, :] + fascia_thick] = Tissue.MUSCLE
    labels[fascia] = Tissue.FASCIA
    # Septa: thin oblique bright lines in the fat, away from the lipoma.
    fat = labels == Tissue.FAT
    for _ in range(spec.septa):
        sx, sy = float(rng.uniform(0, width)), float(rng.uniform(skin_thick + 2, spec.fat_mm))
        ang = math.radians(float(rng.uniform(-35, 35)))
        length = float(rng.uniform(4.0, 14.0))
        along = (x - sx) * math.cos(ang) + (y - sy) * math.sin(ang)
        across = -(x - sx) * math.sin(ang) + (y - sy) * math.cos(ang)
        septum = (np.abs(across) < 0.2) & (np.abs(along) < length / 2) & fat & (rho > 1.3)
        labels[septum] = Tissue.SEPTUM
    # The iceberg breaks the fascia where it passes; the lipoma lies over everything.
    if spec.iceberg:
        labels[outer & (labels == Tissue.FASCIA)] = Tissue.FAT
    labels[capsule] = Tissue.CAPSULE
    labels[core] = Tissue.LESION_FAT

    echo_table = np.array([ECHO.get(Tissue(k), 1.0) for k in range(len(Tissue))])
    echo = echo_table[labels]
    fat_echo = ECHO[Tissue.FAT]
    echo[labels == Tissue.LESION_FAT] = fat_echo * spec.lesion_echo
    echo[labels == Tissue.CAPSULE] = fat_echo * spec.capsule_echo
    muscle = labels == Tissue.MUSCLE
    fibres = 0.45 + 1.1 * np.sin(math.pi * (y + 0.4 * np.sin(x / 6.0)) / 0.9) ** 2
    echo = np.where(muscle, echo * fibres, echo)
    # Striations: lines parallel to the skin at random depths inside the core, each
    # over part of the core's width there, slightly wavy.
    for _ in range(spec.striations):
        sv = float(rng.uniform(-0.75, 0.75)) * b
        thick = float(rng.uniform(0.2, 0.45))
        frac = float(rng.uniform(0.4, 0.9))
        chord = a * math.sqrt(max(0.0, 1.0 - (sv / b) ** 2))
        centre_u = float(rng.uniform(-1, 1)) * chord * (1 - frac)
        wave = 0.25 * np.sin((x - cx) / float(rng.uniform(2.0, 5.0)))
        line = (
            (np.abs(y - (cy + sv) - wave) < thick / 2)
            & (np.abs(u - centre_u) < chord * frac)
            & core
        )
        echo[line] *= spec.striation_echo

    att = np.zeros((rows, cols))
    att[core] = -spec.enhancement
    att[labels == Tissue.MUSCLE] = 0.004
    ripple = spec.tgc_ripple_db * np.sin(2 * math.pi * np.arange(rows) * step / 17.0 + seed)
    wavelength = 1.54 / spec.frequency_mhz
    kernel = psf(
        (step, step),
        sigma_lateral_mm=2.8 / spec.frequency_mhz,
        sigma_axial_mm=1.2 / spec.frequency_mhz,
        wavelength_mm=wavelength,
    )
    image = bmode(
        echo,
        att,
        step,
        psf=kernel,
        seed=seed,
        depth_loss_np_per_mm=spec.residual_loss,
        gain_db=ripple,
    )

    # Truth from the analytic shapes (dense boundary samples of the core).
    s = np.linspace(0, 2 * math.pi, 4096, endpoint=False)
    bu, bv = a * np.cos(s), b * np.sin(s)
    bx = cx + bu * math.cos(t) - bv * math.sin(t)
    by = cy + bu * math.sin(t) + bv * math.cos(t)
    fine_x = np.linspace(-5.0, width + 5.0, 8192)
    skin_f, fascia_f = _surfaces(spec, fine_x, cx)
    to_fascia = _signed_to_curve(bx, by, fine_x, fascia_f)
    to_skin = -_signed_to_curve(bx, by, fine_x, skin_f)
    lo, hi = float(to_fascia.min()), float(to_fascia.max())
    from backmice.vocab import Relation

    col_x = np.arange(cols) * step
    truth = {
        "long_axis_mm": 2 * a,
        "short_axis_mm": 2 * b,
        "x_mm": cx,
        "depth_mm": cy,
        "skin_depth_mm": float(to_skin.min()),
        "fascia_min_mm": lo,
        "fascia_max_mm": hi,
        "fascia_depth_mm": float(np.interp(cx, fine_x, fascia_f)),
        "relation": str(Relation.from_extent(lo, hi)),
        "skin_line": np.column_stack([np.arange(cols), np.interp(col_x, fine_x, skin_f) / step]),
        "fascia_line": np.column_stack(
            [np.arange(cols), np.interp(col_x, fine_x, fascia_f) / step]
        ),
        "spec": asdict(spec),
    }
    return LipomaFrame(image=image, spacing_mm=(step, step), labels=labels, truth=truth)
