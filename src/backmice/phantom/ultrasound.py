"""B-mode ultrasound of the phantom: a linear probe on the skin of the back.

The image plane touches the skin at one point (usually over a lesion); its x
axis runs along the skin in the axial plane toward the patient's left (image
left = patient right, as for a transverse scan), its y axis goes straight
into the body. Pixel ``(row i, col j)`` of the tissue region is the LPS point
``origin + j·dx·x_axis + i·dy·y_axis``: depth is measured from the top of the
region, the transducer face.

Image formation: each pixel gets a backscatter strength from its tissue
(:data:`ECHO`), bright specular layers (skin, septa, fascia, capsule) and a
fibrillar texture in muscle; a complex Gaussian scatterer field is weighted by
it and convolved with a point-spread function (Gaussian envelope, carrier
along the beam) to give speckle; the amplitude is attenuated along each beam
by what lies above (bone shadows, cysts enhance: :data:`ATTENUATION`, relative
to what the time-gain compensation removes), then log-compressed to 8 bits.
Outside the region the frame carries burned-in text, a depth scale and a
focus marker, as scanners write them. A cine slides the probe sideways,
moving the same scatterers with the tissue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import fftconvolve

from backmice.phantom.font import draw_text, text_width
from backmice.phantom.lesions import fascia_frame
from backmice.phantom.scene import Scene
from backmice.phantom.tissues import Tissue

__all__ = [
    "ATTENUATION",
    "ECHO",
    "UltrasoundFrame",
    "UltrasoundPlane",
    "bmode",
    "plane_over",
    "psf",
    "render_ultrasound",
    "ultrasound_truth",
]

#: Backscatter power of each tissue (the fascia, 14, displays near white).
ECHO: dict[Tissue, float] = {
    Tissue.AIR: 0.0005,
    Tissue.GEL: 0.0005,
    Tissue.SKIN: 6.0,
    Tissue.FAT: 0.07,
    Tissue.EPIMUSCULAR_FAT: 0.07,
    Tissue.SEPTUM: 3.0,
    Tissue.FASCIA: 14.0,
    Tissue.MUSCLE: 0.3,
    Tissue.MUSCLE_FAT: 0.8,
    Tissue.CORTEX: 30.0,
    Tissue.MARROW: 0.3,
    Tissue.VISCERAL_FAT: 0.3,
    Tissue.BOWEL: 0.5,
    Tissue.CSF: 0.002,
    Tissue.DISC: 0.3,
    Tissue.CAPSULE: 5.0,
    Tissue.LESION_FAT: 0.14,
    Tissue.PROMINENCE_FAT: 0.09,
    Tissue.CYST: 0.002,
    Tissue.CYST_WALL: 3.0,
    Tissue.SOLID: 0.6,
}

#: Amplitude attenuation (Np/mm) beyond what time-gain compensation removes:
#: negative values brighten what lies below (posterior acoustic enhancement).
ATTENUATION: dict[Tissue, float] = {
    Tissue.CORTEX: 1.2,
    Tissue.MARROW: 0.6,
    Tissue.CYST: -0.035,
    Tissue.CSF: -0.02,
    Tissue.MUSCLE: 0.004,
}


@dataclass(frozen=True)
class UltrasoundPlane:
    """Where the tissue region of an ultrasound image lies in the patient.

    Attributes
    ----------
    origin : ndarray of shape (3,)
        LPS mm of the centre of the region's first pixel (row 0, col 0) in frame 0.
    x_axis, y_axis : ndarray of shape (3,)
        Unit LPS directions of increasing column and row (depth).
    delta_mm : (float, float)
        Pixel size ``(dx, dy)``, mm.
    shape : (int, int)
        Region size ``(rows, cols)``, pixels.
    frame_shift_mm : float
        Sideways probe motion between cine frames, along ``x_axis``.
    """

    origin: np.ndarray
    x_axis: np.ndarray
    y_axis: np.ndarray
    delta_mm: tuple[float, float]
    shape: tuple[int, int]
    frame_shift_mm: float = 0.0

    def points(self, cols: np.ndarray | None = None) -> np.ndarray:
        """LPS centres of the region's pixels (row-major), shape (rows·cols, 3).

        ``cols`` may give other column positions (in pixels, possibly outside the
        region) to sample a wider strip.
        """
        rows, ncols = self.shape
        cols = np.arange(ncols, dtype=np.float64) if cols is None else np.asarray(cols, float)
        i, j = np.meshgrid(np.arange(rows, dtype=np.float64), cols, indexing="ij")
        dx, dy = self.delta_mm
        return (
            self.origin
            + (j.reshape(-1, 1) * dx) * self.x_axis
            + (i.reshape(-1, 1) * dy) * self.y_axis
        )

    def frame_origin(self, frame: int) -> np.ndarray:
        """LPS origin of the region in a cine frame."""
        return self.origin + frame * self.frame_shift_mm * self.x_axis


def plane_over(
    scene: Scene,
    point: np.ndarray,
    *,
    width_mm: float = 40.0,
    depth_mm: float = 32.0,
    delta_mm: float = 0.08,
    frame_shift_mm: float = 0.0,
) -> UltrasoundPlane:
    """A transverse probe position on the skin over ``point`` (LPS mm).

    The probe touches the skin at the point's angle and height; the region is
    ``width_mm`` wide, centred there, and ``depth_mm`` deep.
    """
    point = np.asarray(point, dtype=np.float64)
    theta = math.atan2(point[1], point[0])
    skin_point, t_theta, _, normal = fascia_frame(scene.anatomy, theta, point[2], which="skin")
    # The skin of the scene may be lifted over a prominence: touch the lifted skin.
    r = float(scene.skin_radius(np.array([theta]), np.array([point[2]]))[0])
    skin_point = np.array([r * math.cos(theta), r * math.sin(theta), point[2]])
    x_axis = -t_theta if t_theta[0] < 0 else t_theta  # toward the patient's left
    y_axis = -normal
    cols = round(width_mm / delta_mm)
    rows = round(depth_mm / delta_mm)
    origin = skin_point - x_axis * (delta_mm * (cols - 1) / 2.0)
    return UltrasoundPlane(
        origin, x_axis, y_axis, (delta_mm, delta_mm), (rows, cols), frame_shift_mm
    )


@dataclass
class UltrasoundFrame:
    """A rendered ultrasound acquisition.

    Attributes
    ----------
    image : ndarray of uint8, shape (frames, rows, cols)
        The whole stored frames (region plus annotation).
    region : (int, int, int, int)
        ``(x0, y0, x1, y1)`` of the tissue region in the stored frame, inclusive.
    plane : UltrasoundPlane
    labels : ndarray of uint8, shape (region rows, region cols)
        Tissue of each region pixel in frame 0.
    """

    image: np.ndarray
    region: tuple[int, int, int, int]
    plane: UltrasoundPlane
    labels: np.ndarray


def psf(
    delta_mm: tuple[float, float],
    *,
    sigma_lateral_mm: float = 0.28,
    sigma_axial_mm: float = 0.12,
    wavelength_mm: float = 0.154,
) -> np.ndarray:
    """Complex point-spread function on the pixel grid (rows = depth); default about 10 MHz.

    Parameters
    ----------
    delta_mm : (float, float)
        Pixel size ``(dx, dy)``, mm.
    sigma_lateral_mm, sigma_axial_mm : float
        Gaussian envelope widths across and along the beam.
    wavelength_mm : float
        Carrier wavelength (1.54 / MHz).
    """
    dx, dy = delta_mm
    hx = math.ceil(3 * sigma_lateral_mm / dx)
    hy = math.ceil(3 * sigma_axial_mm / dy)
    y, x = np.meshgrid(np.arange(-hy, hy + 1) * dy, np.arange(-hx, hx + 1) * dx, indexing="ij")
    env = np.exp(-0.5 * ((x / sigma_lateral_mm) ** 2 + (y / sigma_axial_mm) ** 2))
    return env * np.exp(2j * math.pi * 2.0 * y / wavelength_mm)


def bmode(
    echo: np.ndarray,
    attenuation: np.ndarray,
    dy: float,
    *,
    psf: np.ndarray,
    seed: int,
    dynamic_range_db: float = 45.0,
    depth_loss_np_per_mm: float = 0.004,
    gain_db: np.ndarray | None = None,
) -> np.ndarray:
    """B-mode image of a backscatter map: speckle, attenuation, log compression to 8 bits.

    A complex Gaussian scatterer field weighted by ``sqrt(echo)`` and by the
    amplitude left after attenuation is convolved with ``psf``; its envelope is
    log-compressed so that the fascia's mean speckle maps to about 240 of 255.

    Parameters
    ----------
    echo : ndarray of shape (rows, cols)
        Backscatter power of each pixel (:data:`ECHO` units).
    attenuation : ndarray of shape (rows, cols)
        Amplitude attenuation of each pixel beyond what time-gain compensation
        removes, Np/mm (negative: posterior enhancement).
    dy : float
        Row (depth) pixel size, mm.
    psf : ndarray
        From :func:`psf`.
    seed : int
        Seed of the speckle.
    dynamic_range_db : float
    depth_loss_np_per_mm : float
        Uniform loss with depth that the time-gain compensation leaves.
    gain_db : ndarray of shape (rows,), optional
        A time-gain curve (dB per row) applied on top.

    Returns
    -------
    ndarray of uint8, shape (rows, cols)
    """
    rows, cols = echo.shape
    pad_r = psf.shape[0] // 2
    depth = np.arange(rows)[:, None] * dy
    att = np.cumsum(attenuation, axis=0) * dy
    gain = np.exp(-np.clip(att, -1.0, 12.0)) * np.exp(-depth_loss_np_per_mm * depth)
    if gain_db is not None:
        gain = gain * (10.0 ** (np.asarray(gain_db, dtype=float)[:, None] / 20.0))
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 7]))
    scat = rng.standard_normal((rows + 2 * pad_r, cols)) + 1j * rng.standard_normal(
        (rows + 2 * pad_r, cols)
    )
    amp = np.zeros_like(scat)
    amp[pad_r : pad_r + rows] = np.sqrt(echo) * gain
    rf = fftconvolve(scat * amp, psf, mode="same")
    env = np.abs(rf[pad_r : pad_r + rows])
    # The mean speckle amplitude of the fascia maps to about 240 of 255.
    ref = math.sqrt(2.0 * ECHO[Tissue.FASCIA] * float((np.abs(psf) ** 2).sum())) * 1.3
    db = 20.0 * np.log10(env / ref + 1e-12)
    image = np.clip((db + dynamic_range_db) / dynamic_range_db * 255.0, 0, 255)
    return np.rint(image).astype(np.uint8)


def _annotate(
    frame: np.ndarray,
    region: tuple[int, int, int, int],
    plane: UltrasoundPlane,
    *,
    frame_no: int,
    frames: int,
) -> None:
    """Burn text, a depth scale and a focus marker into the frame, outside the region."""
    x0, y0, x1, y1 = region
    rows, cols = frame.shape
    draw_text(frame, "BACKMICE PHANTOM", 6, 8, scale=2, value=235)
    draw_text(
        frame,
        "L12-5  MSK  TRANS BACK",
        6,
        cols - 8 - text_width("L12-5  MSK  TRANS BACK", scale=2),
        scale=2,
        value=200,
    )
    depth_cm = plane.shape[0] * plane.delta_mm[1] / 10.0
    draw_text(frame, f"D {depth_cm:.1f}CM  G 52%  FR 28HZ", 24, 8, scale=1, value=190)
    if frames > 1:
        draw_text(frame, f"CINE {frame_no + 1}/{frames}", rows - 14, 8, scale=1, value=190)
    draw_text(
        frame, "MI 0.9  TIS 0.2", rows - 14, cols - 8 - text_width("MI 0.9  TIS 0.2"), value=190
    )
    # Depth scale right of the region: a tick every 5 mm, labelled every cm.
    dy = plane.delta_mm[1]
    scale_col = x1 + 8
    for mm in range(0, int(plane.shape[0] * dy) + 1, 5):
        r = y0 + round(mm / dy)
        if r > y1:
            break
        length = 7 if mm % 10 == 0 else 4
        frame[r, scale_col : scale_col + length] = 220
        if mm % 10 == 0:
            draw_text(frame, str(mm // 10), r - 3, scale_col + 10, value=220)
    # Focus marker (a small triangle) left of the region, at two thirds of the depth.
    fr = y0 + (y1 - y0) * 2 // 3
    for k in range(5):
        frame[fr - k : fr + k + 1, x0 - 12 + k] = 220
    # Probe orientation marker at the top-left corner of the region.
    frame[max(0, y0 - 8) : y0 - 3, x0 : x0 + 5] = 255


def render_ultrasound(
    scene: Scene,
    plane: UltrasoundPlane,
    *,
    frames: int = 1,
    frame_size: tuple[int, int] = (480, 640),
    region_at: tuple[int, int] | None = None,
    dynamic_range_db: float = 45.0,
    seed: int = 0,
) -> UltrasoundFrame:
    """Render B-mode frames of a scene.

    Parameters
    ----------
    scene : Scene
    plane : UltrasoundPlane
        Where the region lies; with ``frames > 1`` its ``frame_shift_mm`` moves it.
    frames : int
        Number of cine frames.
    frame_size : (int, int)
        ``(rows, cols)`` of the stored frame, which must hold the region and margins.
    region_at : (int, int), optional
        ``(row, col)`` of the region's top-left pixel; default centred sideways,
        40 rows from the top.
    dynamic_range_db : float
        Displayed dynamic range of the log compression.
    seed : int
        Seed of the speckle.

    Returns
    -------
    UltrasoundFrame
    """
    rows, cols = plane.shape
    f_rows, f_cols = frame_size
    if region_at is None:
        region_at = (40, (f_cols - cols) // 2)
    y0, x0 = region_at
    y1, x1 = y0 + rows - 1, x0 + cols - 1
    if y1 >= f_rows - 20 or x0 < 20 or x1 >= f_cols - 40:
        raise ValueError(f"a {rows}x{cols} region does not fit a {f_rows}x{f_cols} frame")
    dx, dy = plane.delta_mm
    shift_px = round(plane.frame_shift_mm / dx) if frames > 1 else 0
    if frames > 1 and abs(shift_px * dx - plane.frame_shift_mm) > 1e-9:
        raise ValueError("frame_shift_mm must be a whole number of pixels")
    kernel = psf(plane.delta_mm)
    pad_c = kernel.shape[1] // 2
    # One wide strip covers every frame (the probe slides along x).
    n_strip = cols + shift_px * (frames - 1) + 2 * pad_c
    strip_cols = np.arange(n_strip, dtype=np.float64) - pad_c + min(0, shift_px * (frames - 1))
    pts = plane.points(strip_cols)
    c = scene.classify(pts)
    labels = c.labels.reshape(rows, n_strip)
    lab = labels.copy()
    lab[lab == Tissue.AIR] = Tissue.GEL

    echo_table = np.array([ECHO.get(Tissue(t), 1.0) for t in range(len(Tissue))])
    echo = echo_table[lab]
    depth = np.arange(rows)[:, None] * dy
    lateral = strip_cols[None, :] * dx
    muscle = (lab == Tissue.MUSCLE) | (lab == Tissue.MUSCLE_FAT)
    fibres = 0.45 + 1.1 * np.sin(math.pi * (depth + 0.4 * np.sin(lateral / 6.0)) / 0.9) ** 2
    echo = np.where(muscle, echo * fibres, echo)
    lipoma = lab == Tissue.LESION_FAT
    streaks = np.sin(2 * math.pi * (depth + 0.8 * np.sin(lateral / 4.0)) / 2.4) > 0.93
    echo = np.where(lipoma & streaks, echo * 4.0, echo)

    att_table = np.array([ATTENUATION.get(Tissue(t), 0.0) for t in range(len(Tissue))])
    region_img = bmode(
        echo, att_table[lab], dy, psf=kernel, dynamic_range_db=dynamic_range_db, seed=seed
    )

    out = np.zeros((frames, f_rows, f_cols), dtype=np.uint8)
    for f in range(frames):
        start = pad_c + f * shift_px - min(0, shift_px * (frames - 1))
        out[f, y0 : y1 + 1, x0 : x1 + 1] = region_img[:, start : start + cols]
        _annotate(out[f], (x0, y0, x1, y1), plane, frame_no=f, frames=frames)
    first = pad_c - min(0, shift_px * (frames - 1))
    return UltrasoundFrame(out, (x0, y0, x1, y1), plane, labels[:, first : first + cols])


def _ray_crossing(
    scene: Scene, start: np.ndarray, direction: np.ndarray, length: float, which: str
) -> float | None:
    """Depth (mm) along a ray where it first enters the inside of the skin or fascia surface."""
    t = np.arange(0.0, length, 0.002)
    p = start + t[:, None] * direction
    theta = np.arctan2(p[:, 1], p[:, 0])
    r = np.hypot(p[:, 0], p[:, 1])
    surface = (
        scene.skin_radius(theta, p[:, 2])
        if which == "skin"
        else scene.anatomy.fascia_radius(theta, p[:, 2])
    )
    inside = r < surface
    hits = np.flatnonzero(inside)
    if hits.size == 0:
        return None
    k = int(hits[0])
    if k == 0:
        return 0.0
    # Linear interpolation between the last outside and the first inside sample.
    d0, d1 = r[k - 1] - surface[k - 1], r[k] - surface[k]
    return float(t[k - 1] + (t[k] - t[k - 1]) * d0 / (d0 - d1))


def ultrasound_truth(scene: Scene, rendered: UltrasoundFrame) -> dict:
    """Truth of an ultrasound acquisition in image millimetres (JSON-ready).

    Returns
    -------
    dict
        ``plane`` (LPS origin and axes, pixel size, region, frames), the depth
        of the skin and of the fascia below the region's middle column and below
        each lesion's centre, and each lesion the plane cuts: its section
        (centre ``x_mm``/``depth_mm`` from the region's top-left pixel, major
        and minor diameters, angle of the major axis from the x axis toward
        depth) in frame 0.
    """
    plane = rendered.plane
    rows, cols = plane.shape
    dx, dy = plane.delta_mm
    depth_mm = (rows - 1) * dy
    mid_x = (cols - 1) * dx / 2.0

    def depth_at(x_mm: float, which: str) -> float | None:
        d = _ray_crossing(scene, plane.origin + x_mm * plane.x_axis, plane.y_axis, depth_mm, which)
        return None if d is None else round(d, 4)

    lesions = []
    for lesion in scene.lesions:
        cut = lesion.core.section_in_plane(plane.origin, plane.x_axis, plane.y_axis)
        if cut is None:
            continue
        (cx, cy), (a, b), angle = cut
        if not (-a <= cx <= (cols - 1) * dx + a and -a <= cy <= depth_mm + a):
            continue  # cut by the plane, but outside the image
        lesions.append(
            {
                "id": lesion.id,
                "kind": str(lesion.kind),
                "x_mm": round(float(cx), 4),
                "depth_mm": round(float(cy), 4),
                "long_axis_mm": round(2 * a, 4),
                "short_axis_mm": round(2 * b, 4),
                "angle_deg": round(angle, 4),
                "skin_depth_below_mm": depth_at(float(cx), "skin"),
                "fascia_depth_below_mm": depth_at(float(cx), "fascia"),
            }
        )
    frames = rendered.image.shape[0]
    return {
        "plane": {
            "origin_lps_mm": [round(float(v), 4) for v in plane.origin],
            "x_axis": [round(float(v), 6) for v in plane.x_axis],
            "y_axis": [round(float(v), 6) for v in plane.y_axis],
            "delta_mm": [dx, dy],
            "region": list(rendered.region),
            "region_shape": [rows, cols],
            "frames": frames,
            "frame_shift_mm": plane.frame_shift_mm if frames > 1 else 0.0,
        },
        "skin_depth_mm": depth_at(mid_x, "skin"),
        "fascia_depth_mm": depth_at(mid_x, "fascia"),
        "lesions": lesions,
    }
