"""The analysis on real MRI: body edge against the skin, subcutaneous fat, fascia, false candidates.

Every study under ``../shared/real`` (relative to the repository root; ``--root``)
is analysed with :func:`backmice.analysis.analyze` and measured with instruments
that do not depend on how the analysis made its masks:

- **body edge to skin** (mm): at every boundary pixel of the body mask, the
  intensity profile along the mask's outward normal (from the gradient of its
  smoothed signed distance) is read in the image itself (the volume lightly
  smoothed, σ 0.5 mm; Dixon: fat + water), from 8 mm inside to 8 mm outside,
  bilinearly at 0.1 mm steps. The skin is where the profile, coming in from the
  air, first crosses half way between the air (a low percentile of its outer
  3 mm, robust to ghosts) and the tissue (the largest signal within 4 mm inside
  that crossing: the skin and subcutaneous fat). ``d`` = mask edge minus skin
  along the normal (+: the mask's edge lies outside the skin, in the air).
  Profiles that leave the image (the body cut by the field of view) or have no
  clear edge (tissue < 3 × air) are skipped and counted. Median and 90th
  percentile of ``|d|`` and the median of ``d``, over the posterior half of the
  body and over all of it; target: median ``|d|`` under 1.5 mm.
- **subcutaneous fat**: the slices of the body with no subcutaneous fat in the
  posterior half (LPS +y of the slice's centroid), and the share of the
  posterior outline with subcutaneous fat within 10 mm.
- **fascia against manual muscle labels** (TUM01 only): the signed fascia
  distance read on the posterior surface of the erector spinae and multifidus
  labels (median and 90th percentile of ``|d|``, median ``d``; targets 1.5 and
  3 mm). + means the surface lies superficial to the fascia drawn (the fascia
  is drawn too deep, in the muscle); − the fascia is drawn superficial to the
  muscle. TUM01 is also analysed as a T1 (its in-phase sum fat + water).
- the candidates (all false: none of these studies has a nodule), the
  analysis' warnings and the time per study.

Pictures go to ``--out`` (default ``bench/out/real``): the analysis' ``qc.png``
and ``<study>_bench.png`` (body outline, subcutaneous fat, fascia and the skin
points found on three slices).

Usage::

    python bench/real.py [--root DIR] [--studies NAME ...] [--out DIR] [--json FILE|-]
    python bench/real.py --selfcheck   # the instrument on phantoms with known skin

Exit code 0 (a missing ``--root`` is not an error, nor are poor numbers or a
refused study); 1 when the analysis crashed on a study (the others are still
measured); ``--selfcheck`` exits 3 when the instrument misses its own tolerances.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.signal import find_peaks

from backmice.analysis import Analysis, AnalysisOptions, analyze, analyze_volume
from backmice.errors import InputError
from backmice.io import Role, Volume, load, open_study
from backmice.segment import Method, body_mask
from backmice.segment.body import smooth_in_plane

REPO = Path(__file__).resolve().parents[1]


def default_root() -> Path:
    """``../shared/real`` beside the repository; from a git worktree, beside its main checkout."""
    root = REPO.parent / "shared" / "real"
    git = REPO / ".git"
    if not root.is_dir() and git.is_file():
        # A worktree's .git file names <main>/.git/worktrees/<name>.
        line = git.read_text().strip()
        if line.startswith("gitdir:"):
            main = Path(line.split(":", 1)[1].strip()).parents[2]
            if (main.parent / "shared" / "real").is_dir():
                root = main.parent / "shared" / "real"
    return root


DEFAULT_OUT = REPO / "bench" / "out" / "real"

#: Profiles run this far inside and outside the mask's edge, mm. Inside, further
#: than the 8 mm of the brief: a mask edge 7 mm out in the air (today's, on real
#: series) leaves the skin 7 mm in, and the tissue level is read 4 mm beyond it.
REACH_IN_MM = 16.0
REACH_OUT_MM = 8.0
#: Sampling step along a profile, mm.
STEP_MM = 0.1
#: Smoothing of the image the profiles are read in (Gaussian sigma in plane), mm.
SMOOTH_MM = 0.5
#: The air level is read in the outer part of each profile, mm.
AIR_MM = 3.0
#: Percentile of the outer part taken as the air level (low: ghosts are bright).
AIR_PERCENTILE = 20.0
#: The tissue level is the largest signal within this depth inside the crossing, mm.
TISSUE_MM = 4.0
#: A peak of a profile's slope is a rise of its own when it stands out by this share
#: of the steepest (the dermis' plateau on the T1 phantom: 0.45).
PROMINENCE = 0.1
#: The slope is averaged over this share of a pixel.
SLOPE_PX = 0.5
#: A profile starts in the air when its air level lies at most this share of the way
#: from the image's air (1st percentile) to its tissue level.
AIR_MAX = 0.15
#: A profile has a clear edge when its tissue level is at least this many times the air.
MIN_CONTRAST = 3.0
#: Subcutaneous fat within this distance of the outline covers it, mm.
SAT_REACH_MM = 10.0
#: Targets of issue 14.
TARGETS = {"edge_median_mm": 1.5, "fascia_median_mm": 1.5, "fascia_p90_mm": 3.0}

LABELS_STUDY = "myosegmentum_tum01_dixon"
LABELS_FILE = "muscle_labels.nii.gz"


# -- geometry ---------------------------------------------------------------------------


def pixel_mm(affine: np.ndarray) -> tuple[float, float]:
    """Row and column spacing (mm) of an index-to-LPS affine.

    Parameters
    ----------
    affine : ndarray of shape (4, 4)

    Returns
    -------
    (float, float)
    """
    norms = np.linalg.norm(np.asarray(affine)[:3, 1:3], axis=0)
    return float(norms[0]), float(norms[1])


def lps_y(affine: np.ndarray, k: np.ndarray, r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """LPS y (mm, + posterior) of voxel indices.

    Parameters
    ----------
    affine : ndarray of shape (4, 4)
    k, r, c : ndarray
        Slice, row and column indices (float allowed), broadcastable.

    Returns
    -------
    ndarray
    """
    a = np.asarray(affine)
    return a[1, 3] + a[1, 0] * k + a[1, 1] * r + a[1, 2] * c


def posterior_half(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Voxels of ``mask`` posterior to their slice's centroid (LPS y above it).

    Parameters
    ----------
    mask : ndarray of bool, shape (slice, row, col)
    affine : ndarray of shape (4, 4)

    Returns
    -------
    ndarray of bool, same shape
    """
    out = np.zeros(mask.shape, dtype=bool)
    rr, cc = np.mgrid[: mask.shape[1], : mask.shape[2]]
    for k in range(mask.shape[0]):
        if not mask[k].any():
            continue
        y = lps_y(affine, k, rr, cc)
        out[k] = mask[k] & (y > float(np.mean(y[mask[k]])))
    return out


def boundary_pixels(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it in their slice.

    The world beyond the image's edge counts as inside: where the field of view
    cuts the body there is no boundary.

    Parameters
    ----------
    mask : ndarray of bool, shape (slice, row, col)

    Returns
    -------
    ndarray of bool, same shape
    """
    padded = np.pad(mask, ((0, 0), (1, 1), (1, 1)), constant_values=True)
    cross = ndimage.generate_binary_structure(2, 1)[None]
    eroded = ndimage.binary_erosion(padded, cross, border_value=1)[:, 1:-1, 1:-1]
    return mask & ~eroded


def signed_distance(mask: np.ndarray, pix: tuple[float, float], *, sigma_px: float = 1.0):
    """Smoothed in-plane signed distance to the mask's edge, mm (+ outside).

    The edge is half way between the inside and outside pixel centres; the
    Gaussian (``sigma_px``) smooths the staircase so its gradient is a normal.

    Parameters
    ----------
    mask : ndarray of bool, shape (slice, row, col)
    pix : (float, float)
        Row and column spacing, mm.
    sigma_px : float

    Returns
    -------
    ndarray of float32, same shape
    """
    out = np.zeros(mask.shape, dtype=np.float32)
    for k in range(mask.shape[0]):
        m = mask[k]
        if not m.any() or m.all():
            continue
        sd = ndimage.distance_transform_edt(~m, sampling=pix) - ndimage.distance_transform_edt(
            m, sampling=pix
        )
        # The edge midway between centres: shift by half the smaller pixel.
        sd = sd - np.where(m, -0.5, 0.5) * min(pix)
        out[k] = ndimage.gaussian_filter(sd, sigma_px)
    return out


# -- body edge to skin ------------------------------------------------------------------


@dataclass
class EdgeProfiles:
    """Body edge against the skin, one entry per profile kept.

    Attributes
    ----------
    points : ndarray of float, shape (N, 3)
        Boundary pixel (slice, row, col) each profile starts from.
    normals : ndarray of float, shape (N, 2)
        Outward unit normal, in (row, col) pixels per mm of path.
    t_mask, t_skin : ndarray of float, shape (N,)
        Position (mm along the normal from the point) of the mask's edge and of
        the skin.
    posterior : ndarray of bool, shape (N,)
    n_boundary : int
        Boundary pixels looked at.
    n_cut : int
        Profiles skipped because they leave the image.
    n_unclear : int
        Profiles skipped for want of a clear air/skin edge.
    n_not_air : int
        Profiles skipped because they do not start in the air (the mask's edge
        lies against dark tissue).
    """

    points: np.ndarray
    normals: np.ndarray
    t_mask: np.ndarray
    t_skin: np.ndarray
    posterior: np.ndarray
    n_boundary: int = 0
    n_cut: int = 0
    n_unclear: int = 0
    n_not_air: int = 0

    @property
    def d(self) -> np.ndarray:
        """Signed distance mask edge − skin, mm (+: the edge lies out in the air)."""
        return self.t_mask - self.t_skin

    def skin_index(self) -> np.ndarray:
        """(slice, row, col) of the skin points, shape (N, 3)."""
        out = self.points.copy()
        out[:, 1:] += self.t_skin[:, None] * self.normals
        return out


def skin_crossing(
    profiles: np.ndarray,
    t: np.ndarray,
    *,
    pixel: float,
    tissue_rule: str = "rise",
    floor: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each profile, coming in from the air, crosses half way to the tissue.

    The air level is a low percentile (``AIR_PERCENTILE``) of the profile's
    outer ``AIR_MM``. A first crossing of a quarter of the way to the profile's
    maximum locates the rise from the air.

    Parameters
    ----------
    profiles : ndarray of float, shape (N, T)
        Signal at positions ``t`` (increasing outward).
    t : ndarray of float, shape (T,)
        Positions along the outward normal, mm, evenly spaced.
    pixel : float
        Pixel size of the image profiled, mm (the slope is averaged over it).
    tissue_rule : {"rise", "max"}
        ``max`` (the brief's): the tissue level is the largest signal within
        ``TISSUE_MM`` inside the crossing (the skin and the subcutaneous fat
        together; read twice, from the quarter-way and then the half-way
        crossing). On T1 a resolved dermis darker than half the fat then puts
        the skin at the dermis/fat border (1.4 mm deep on the T1 phantom, whose
        2 mm dermis reads 0.4 of the fat). ``rise`` (default): the half-way
        level is, where it is lower than that, the signal at the steepest point
        of the first rise from the air: the first peak of the slope (averaged
        over ``SLOPE_PX`` of a pixel) from 4 mm outside to 1 mm inside the
        ``max`` crossing that reaches half the steepest there and stands out by
        ``PROMINENCE`` of it. A resolved dermis is then the tissue; for a
        single blurred edge the two rules agree.
    floor : float, optional
        The image's air level (a low percentile of the whole image). A profile
        whose "air" lies more than ``AIR_MAX`` of the way from it to the tissue
        does not start in the air: the mask's edge lies against dark tissue
        (muscle in a fat-bright image, where holes in the mask open onto a
        field of view that cuts the body).

    Returns
    -------
    t_skin : ndarray of float, shape (N,)
        Position of the crossing, mm (NaN where there is no clear edge).
    clear : ndarray of bool, shape (N,)
        Whether the profile has a clear edge: tissue ≥ ``MIN_CONTRAST`` × air,
        and the crossing lies inside the outer ``AIR_MM``.
    in_air : ndarray of bool, shape (N,)
        Whether the profile starts in the air (see ``floor``; all True without it).
    """
    step = float(t[1] - t[0])
    q = profiles[:, ::-1]  # from the air inward
    u = t[::-1]
    n, m = q.shape
    rows = np.arange(n)
    n_air = max(2, round(AIR_MM / step))
    n_tis = max(1, round(TISSUE_MM / step))
    n_mm = max(1, round(1.0 / step))
    air = np.percentile(q[:, :n_air], AIR_PERCENTILE, axis=1)

    def first_at_least(level: np.ndarray) -> np.ndarray:
        above = q >= level[:, None]
        return np.where(above.any(axis=1), np.argmax(above, axis=1), m - 1)

    def window(i: np.ndarray, start: int, stop: int) -> np.ndarray:
        return np.clip(i[:, None] + np.arange(start, stop + 1)[None, :], 0, m - 1)

    i = first_at_least(air + 0.25 * (q.max(axis=1) - air))
    for _ in range(2):
        tissue = np.take_along_axis(q, window(i, 0, n_tis), axis=1).max(axis=1)
        half = 0.5 * (air + tissue)
        i = first_at_least(half)
    if tissue_rule == "rise":
        # Slope of the profile averaged over part of a pixel (bilinear samples give a
        # slope constant within each pixel, whose steps would make false peaks).
        n_avg = max(1, round(SLOPE_PX * pixel / step))
        slope = np.gradient(ndimage.uniform_filter1d(q, n_avg, axis=1), axis=1)
        idx = window(i, -n_tis, n_mm)
        s = np.take_along_axis(slope, idx, axis=1)
        # One local maximum above half the steepest: it is the steepest. Several:
        # the first that stands out (scipy's prominence).
        top = s.max(axis=1)
        high = s[:, 1:-1] >= 0.5 * top[:, None]
        bump = (s[:, 1:-1] > s[:, :-2]) & (s[:, 1:-1] >= s[:, 2:]) & high
        j = np.where(top > 0, np.argmax(s, axis=1), -1)
        for row in np.flatnonzero((bump.sum(axis=1) > 1) & (top > 0)):
            peaks, _ = find_peaks(s[row], height=0.5 * top[row], prominence=PROMINENCE * top[row])
            if peaks.size:
                j[row] = peaks[0]
        rise = np.where(j >= 0, q[rows, idx[rows, np.maximum(j, 0)]], np.inf)
        lower = rise < half
        half = np.where(lower, rise, half)
        tissue = np.where(lower, 2.0 * half - air, tissue)
        i = first_at_least(half)
    lo = np.maximum(i - 1, 0)
    a, b = q[rows, lo], q[rows, i]
    frac = np.clip((half - a) / np.where(b > a, b - a, 1.0), 0.0, 1.0)
    t_skin = u[lo] + frac * (u[i] - u[lo])
    clear = (tissue >= MIN_CONTRAST * np.maximum(air, 0.0)) & (tissue > air) & (i >= n_air)
    in_air = np.ones(n, dtype=bool) if floor is None else air <= floor + AIR_MAX * (tissue - floor)
    return np.where(clear & in_air, t_skin, np.nan), clear, in_air


def mask_crossing(sdf_profiles: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Where each profile of the signed distance crosses 0 (inside → outside) nearest t = 0.

    Parameters
    ----------
    sdf_profiles : ndarray of float, shape (N, T)
    t : ndarray of float, shape (T,)

    Returns
    -------
    ndarray of float, shape (N,)
        Position of the mask's edge, mm; NaN where it does not cross.
    """
    a, b = sdf_profiles[:, :-1], sdf_profiles[:, 1:]
    cross = (a <= 0) & (b > 0)
    cost = np.where(cross, np.abs(t[:-1])[None, :], np.inf)
    j = np.argmin(cost, axis=1)
    rows = np.arange(len(j))
    aa, bb = a[rows, j], b[rows, j]
    frac = np.clip(-aa / np.where(bb > aa, bb - aa, 1.0), 0.0, 1.0)
    out = t[j] + frac * (t[j + 1] - t[j])
    return np.where(np.isfinite(cost[rows, j]), out, np.nan)


def edge_profiles(
    image: np.ndarray, mask: np.ndarray, affine: np.ndarray, *, smoothed: bool = False
) -> EdgeProfiles:
    """Read the profiles across the body mask's edge and find the mask's edge and the skin.

    Parameters
    ----------
    image : ndarray of float, shape (slice, row, col)
        The image (T1, or Dixon fat + water).
    mask : ndarray of bool, same shape
        The body.
    affine : ndarray of shape (4, 4)
        Index to LPS mm.
    smoothed : bool
        ``image`` is already smoothed by ``SMOOTH_MM``.

    Returns
    -------
    EdgeProfiles
    """
    pix = pixel_mm(affine)
    if not smoothed:
        image = smooth_in_plane(image, (SMOOTH_MM / pix[0], SMOOTH_MM / pix[1]))
    sdf = signed_distance(mask, pix)
    edge = boundary_pixels(mask)
    k, r, c = np.nonzero(edge)
    n_boundary = len(k)
    gr = np.empty(k.shape)
    gc = np.empty(k.shape)
    for kk in np.unique(k):
        sel = k == kk
        g_r, g_c = np.gradient(sdf[kk], pix[0], pix[1])
        gr[sel], gc[sel] = g_r[r[sel], c[sel]], g_c[r[sel], c[sel]]
    norm = np.hypot(gr, gc)
    ok = norm > 1e-6
    k, r, c, gr, gc, norm = k[ok], r[ok], c[ok], gr[ok], gc[ok], norm[ok]
    normals = np.stack([gr / norm / pix[0], gc / norm / pix[1]], axis=1)  # px per mm
    t = np.arange(-REACH_IN_MM, REACH_OUT_MM + STEP_MM / 2, STEP_MM)
    rows = r[:, None] + t[None, :] * normals[:, :1]
    cols = c[:, None] + t[None, :] * normals[:, 1:]
    inside = (
        (rows.min(axis=1) >= 0)
        & (rows.max(axis=1) <= mask.shape[1] - 1)
        & (cols.min(axis=1) >= 0)
        & (cols.max(axis=1) <= mask.shape[2] - 1)
    )
    n_cut = int((~inside).sum())
    k, r, c, normals, rows, cols = (
        k[inside],
        r[inside],
        c[inside],
        normals[inside],
        rows[inside],
        cols[inside],
    )
    coords = np.stack([np.broadcast_to(k[:, None], rows.shape), rows, cols]).reshape(3, -1)
    prof = ndimage.map_coordinates(image, coords, order=1).reshape(rows.shape)
    sdfp = ndimage.map_coordinates(sdf, coords, order=1).reshape(rows.shape)
    floor = float(np.percentile(image[:, ::2, ::2], 1))
    t_skin, clear, in_air = skin_crossing(prof, t, pixel=min(pix), floor=floor)
    t_mask = mask_crossing(sdfp, t)
    keep = clear & in_air & np.isfinite(t_mask)
    post = posterior_half(mask, affine)[k, r, c]
    return EdgeProfiles(
        points=np.stack([k, r, c], axis=1)[keep].astype(np.float64),
        normals=normals[keep],
        t_mask=t_mask[keep],
        t_skin=t_skin[keep],
        posterior=post[keep],
        n_boundary=n_boundary,
        n_cut=n_cut,
        n_unclear=int((~clear).sum()),
        n_not_air=int((clear & ~in_air).sum()),
    )


def distance_stats(d: np.ndarray) -> dict[str, float | int | None]:
    """Median and 90th percentile of ``|d|``, and the median of ``d`` (mm).

    Parameters
    ----------
    d : ndarray of float, shape (N,)

    Returns
    -------
    dict
        ``n``, ``median_abs``, ``p90_abs``, ``median`` (None when empty).
    """
    d = d[np.isfinite(d)]
    if not d.size:
        return {"n": 0, "median_abs": None, "p90_abs": None, "median": None}
    a = np.abs(d)
    return {
        "n": int(d.size),
        "median_abs": round(float(np.median(a)), 2),
        "p90_abs": round(float(np.percentile(a, 90)), 2),
        "median": round(float(np.median(d)), 2),
    }


def edge_summary(ep: EdgeProfiles) -> dict[str, Any]:
    """The body-edge-to-skin numbers of a set of profiles.

    Parameters
    ----------
    ep : EdgeProfiles

    Returns
    -------
    dict
        ``posterior`` and ``all`` (:func:`distance_stats`), ``boundary``,
        ``cut``, ``unclear``, ``not_air`` (profile counts).
    """
    return {
        "posterior": distance_stats(ep.d[ep.posterior]),
        "all": distance_stats(ep.d),
        "boundary": ep.n_boundary,
        "cut": ep.n_cut,
        "unclear": ep.n_unclear,
        "not_air": ep.n_not_air,
    }


# -- subcutaneous fat ------------------------------------------------------------------


def sat_coverage(sat: np.ndarray, mask: np.ndarray, affine: np.ndarray) -> dict[str, Any]:
    """Slices without posterior subcutaneous fat, and how much of the posterior outline has it.

    Parameters
    ----------
    sat : ndarray of bool, shape (slice, row, col)
        Subcutaneous fat.
    mask : ndarray of bool, same shape
        The body.
    affine : ndarray of shape (4, 4)

    Returns
    -------
    dict
        ``slices_without`` (list of slice indices where the body is present but
        its posterior half holds no subcutaneous fat), ``body_slices``, and
        ``outline_covered``: the share of posterior boundary pixels with
        subcutaneous fat within ``SAT_REACH_MM`` (None without any).
    """
    pix = pixel_mm(affine)
    post = posterior_half(mask, affine)
    edge = boundary_pixels(mask) & post
    without, covered, total = [], 0, 0
    body_slices = [k for k in range(mask.shape[0]) if mask[k].any()]
    for k in body_slices:
        here = sat[k] & post[k]
        if not here.any():
            without.append(k)
        n = int(edge[k].sum())
        total += n
        if n and sat[k].any():
            dist = ndimage.distance_transform_edt(~sat[k], sampling=pix)
            covered += int((dist[edge[k]] <= SAT_REACH_MM).sum())
    return {
        "slices_without": without,
        "body_slices": len(body_slices),
        "outline_covered": round(covered / total, 3) if total else None,
    }


# -- fascia against manual labels --------------------------------------------------------


def labels_on_grid(path: Path, volume: Volume) -> tuple[np.ndarray, dict[str, Any]]:
    """Manual labels resampled (nearest) onto the volume's grid, through patient coordinates.

    SimpleITK reads the NIfTI into LPS; the volume's affine maps its indices to
    LPS. The labels are looked up at each voxel's LPS position, so the mapping
    follows the two files' geometry, not their array order.

    Parameters
    ----------
    path : Path
        The label image (NIfTI).
    volume : Volume
        The grid to put the labels on.

    Returns
    -------
    labels : ndarray of int16, shape of ``volume.array``
    about : dict
        ``same_grid`` (the label image's geometry equals the volume's),
        ``mapping`` (a sentence).
    """
    import SimpleITK as sitk

    img = sitk.ReadImage(str(path))
    arr = sitk.GetArrayFromImage(img)  # (z, y, x) = (slice, row, col) for a 2D-stack NIfTI
    a = np.asarray(volume.affine, dtype=np.float64)
    direction = np.asarray(img.GetDirection()).reshape(3, 3)
    spacing = np.asarray(img.GetSpacing())
    # Index (x, y, z) -> LPS in ITK; ours is (slice, row, col) -> LPS.
    itk_affine = np.eye(4)
    itk_affine[:3, :3] = (direction * spacing[None, :])[:, ::-1]  # columns for (z, y, x)
    itk_affine[:3, 3] = img.GetOrigin()
    same = arr.shape == volume.array.shape and np.allclose(itk_affine, a, atol=1e-3)
    if same:
        return arr.astype(np.int16), {
            "same_grid": True,
            "mapping": "label grid == DICOM grid (size, spacing, origin, direction)",
        }
    kk, rr, cc = np.indices(volume.array.shape).reshape(3, -1)
    lps = (a @ np.stack([kk, rr, cc, np.ones_like(kk)]))[:3]
    idx = np.linalg.solve(itk_affine, np.vstack([lps, np.ones(lps.shape[1])]))[:3]
    idx = np.rint(idx).astype(np.int64)
    ok = np.all((idx >= 0) & (idx < np.array(arr.shape)[:, None]), axis=0)
    out = np.zeros(kk.shape, dtype=np.int16)
    out[ok] = arr[idx[0, ok], idx[1, ok], idx[2, ok]]
    return out.reshape(volume.array.shape), {
        "same_grid": False,
        "mapping": "labels resampled through LPS (nearest)",
    }


def labels_fit(labels: np.ndarray, fat_fraction: np.ndarray) -> dict[str, float]:
    """Share of label voxels on fat (fat fraction ≥ 0.5), as mapped and mirrored.

    Muscle labels that land on the muscles have few voxels on fat; mirrored
    left–right or head–foot they land partly on the subcutaneous fat and
    marrow. Used to check the mapping.

    Parameters
    ----------
    labels : ndarray of int, shape (slice, row, col)
    fat_fraction : ndarray of float, same shape

    Returns
    -------
    dict
        ``as_mapped``, ``mirrored_col``, ``mirrored_slice``, ``mirrored_row``.
    """
    fat = fat_fraction >= 0.5
    out = {}
    for name, axes in (
        ("as_mapped", ()),
        ("mirrored_col", (2,)),
        ("mirrored_slice", (0,)),
        ("mirrored_row", (1,)),
    ):
        m = np.flip(labels, axes) > 0 if axes else labels > 0
        out[name] = round(float(fat[m].mean()), 3) if m.any() else math.nan
    return out


def posterior_step(affine: np.ndarray) -> tuple[int, int]:
    """The in-plane neighbour step (drow, dcol) that goes most posterior (LPS +y).

    Parameters
    ----------
    affine : ndarray of shape (4, 4)

    Returns
    -------
    (int, int)
    """
    dy_row, dy_col = float(affine[1, 1]), float(affine[1, 2])
    if abs(dy_row) >= abs(dy_col):
        return (1 if dy_row > 0 else -1), 0
    return 0, (1 if dy_col > 0 else -1)


def label_surface(labels: np.ndarray, body: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Points on the posterior surface of the muscle labels.

    For each slice, each label value, each of its connected pieces and each
    line along the posterior direction: the most posterior voxel, kept when the
    voxel posterior to it is in the body and not another label. The point
    returned lies half way between the two (on the surface).

    Parameters
    ----------
    labels : ndarray of int, shape (slice, row, col)
    body : ndarray of bool, same shape
    affine : ndarray of shape (4, 4)

    Returns
    -------
    ndarray of float, shape (N, 3)
        (slice, row, col) of the surface points.
    """
    dr, dc = posterior_step(affine)
    # Work with the posterior direction along +rows.
    if dc:
        labels, body = np.swapaxes(labels, 1, 2), np.swapaxes(body, 1, 2)
    flip = (dr or dc) < 0
    if flip:
        labels, body = labels[:, ::-1], body[:, ::-1]
    n_rows = labels.shape[1]
    pts = []
    for k in range(labels.shape[0]):
        for value in np.unique(labels[k]):
            if value == 0:
                continue
            pieces, n = ndimage.label(labels[k] == value)
            for p in range(1, n + 1):
                rows, cols = np.nonzero(pieces == p)
                last = np.full(labels.shape[2], -1)
                np.maximum.at(last, cols, rows)
                cc = np.flatnonzero(last >= 0)
                rr = last[cc]
                ok = rr + 1 < n_rows
                rr, cc = rr[ok], cc[ok]
                nxt = (labels[k, rr + 1, cc] == 0) & body[k, rr + 1, cc]
                for r_, c_ in zip(rr[nxt], cc[nxt], strict=True):
                    pts.append((k, r_ + 0.5, c_))
    pts = np.asarray(pts, dtype=np.float64).reshape(-1, 3)
    if flip:
        pts[:, 1] = n_rows - 1 - pts[:, 1]
    if dc:
        pts = pts[:, [0, 2, 1]]
    return pts


def facing_posterior(labels: np.ndarray, points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Cosine of the angle between the labels' outward normal at each point and posterior.

    The normal is the gradient of the smoothed signed distance of all labels
    together, in the slice (as for the body's profiles). The medial walls of the
    multifidus face the spinous processes (about 60–90° from posterior), where
    the deep fascia does not run.

    Parameters
    ----------
    labels : ndarray of int, shape (slice, row, col)
    points : ndarray of float, shape (N, 3)
        (slice, row, col), e.g. from :func:`label_surface`.
    affine : ndarray of shape (4, 4)

    Returns
    -------
    ndarray of float, shape (N,)
    """
    if not len(points):
        return np.zeros(0)
    pix = pixel_mm(affine)
    sdf = signed_distance(labels > 0, pix)
    g_r = np.zeros_like(sdf)
    g_c = np.zeros_like(sdf)
    for k in np.unique(points[:, 0].astype(int)):
        g_r[k], g_c[k] = np.gradient(sdf[k], pix[0], pix[1])
    gr = ndimage.map_coordinates(g_r, points.T, order=1)
    gc = ndimage.map_coordinates(g_c, points.T, order=1)
    a = np.asarray(affine)
    # LPS direction of a mm step along rows and along columns.
    y = gr * a[1, 1] / pix[0] + gc * a[1, 2] / pix[1]
    norm = np.hypot(gr, gc)
    return np.where(norm > 0, y / np.where(norm > 0, norm, 1.0), 0.0)


def fascia_at(signed_mm: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The signed fascia distance (mm) at sub-voxel points, bilinear in the slice.

    Parameters
    ----------
    signed_mm : ndarray of float, shape (slice, row, col)
    points : ndarray of float, shape (N, 3)

    Returns
    -------
    ndarray of float, shape (N,)
    """
    if not len(points):
        return np.zeros(0)
    return ndimage.map_coordinates(signed_mm, points.T, order=1, mode="nearest")


# -- one study ---------------------------------------------------------------------------


@dataclass
class StudyResult:
    """What the bench found on one study (or variant)."""

    name: str
    stacks: str = ""
    short_stacks: str = ""
    method: str = ""
    refused: str | None = None
    crashed: str | None = None
    edge: dict[str, Any] = field(default_factory=dict)
    sat: dict[str, Any] = field(default_factory=dict)
    fascia: dict[str, Any] | None = None
    candidates: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    analysis_seconds: float = 0.0


def analysis_image(analysis: Analysis) -> np.ndarray:
    """The image the body was found in: the T1, or Dixon fat + water.

    Parameters
    ----------
    analysis : Analysis

    Returns
    -------
    ndarray of float32, shape (slice, row, col)
    """
    image = analysis.volume.array
    if analysis.method is Method.DIXON and len(analysis.stacks) > 1:
        image = image + load(analysis.stacks[1]).array
    return image


def measure(
    result: StudyResult,
    analysis: Analysis,
    image: np.ndarray,
    *,
    labels: np.ndarray | None,
    out: Path | None,
) -> StudyResult:
    """Fill ``result`` with the metrics of ``analysis`` and write its pictures.

    Parameters
    ----------
    result : StudyResult
    analysis : Analysis
    image : ndarray of float, shape (slice, row, col)
        T1 or Dixon fat + water, as the body was found in.
    labels : ndarray of int or None
        Manual muscle labels on the analysis grid.
    out : Path or None
        Folder for the pictures.

    Returns
    -------
    StudyResult
    """
    affine = np.asarray(analysis.volume.affine, dtype=np.float64)
    mask = analysis.body.mask
    ep = edge_profiles(image, mask, affine)
    result.edge = edge_summary(ep)
    result.sat = sat_coverage(analysis.subcutaneous, mask, affine)
    surface = np.zeros((0, 3))
    if labels is not None:
        surface = label_surface(labels, mask, affine)
        d = fascia_at(analysis.fascia.signed_mm, surface)
        result.fascia = distance_stats(d)
        facing = facing_posterior(labels, surface, affine) >= math.cos(math.radians(45.0))
        result.fascia["facing_posterior"] = distance_stats(d[facing])
    result.candidates = [
        {
            "id": row["nodule_id"],
            "relation": row["relation"],
            "max_diameter_mm": round(float(row["max_diameter_mm"]), 1),
            "volume_mm3": round(float(row["volume_mm3"]), 0),
        }
        for row in analysis.nodules
    ]
    result.warnings = list(analysis.warnings)
    if out is not None:
        from backmice.report import qc_figure

        out.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^\w.-]+", "_", result.name).strip("_")
        qc_figure(analysis, out / f"{slug}_qc.png")
        bench_picture(analysis, image, ep, labels, surface, out / f"{slug}_bench.png")
    return result


def run_study(path: Path, *, out: Path | None) -> list[StudyResult]:
    """Analyse one real study and measure it (TUM01: also as a T1 of fat + water).

    Parameters
    ----------
    path : Path
    out : Path or None

    Returns
    -------
    list of StudyResult
    """
    t0 = time.perf_counter()
    result = StudyResult(path.name)
    try:
        study = open_study(path)
        analysis = analyze(study)
    except InputError as exc:
        result.refused = str(exc).replace(str(path), "").strip(": ")
        result.seconds = time.perf_counter() - t0
        return [result]
    result.analysis_seconds = time.perf_counter() - t0
    result.method = str(analysis.method)
    result.stacks = "; ".join(
        f"{s.role} {s.description!r} {'x'.join(map(str, s.shape))}" for s in analysis.stacks
    )
    result.short_stacks = " + ".join(
        f"{s.role} {'x'.join(map(str, s.shape))}" for s in analysis.stacks
    )
    image = analysis_image(analysis)
    labels = None
    about: dict[str, Any] = {}
    if (path / LABELS_FILE).exists():
        labels, about = labels_on_grid(path / LABELS_FILE, analysis.volume)
        ff = analysis.fat.fat_fraction
        if ff is not None:
            about["on_fat"] = labels_fit(labels, ff)
    measure(result, analysis, image, labels=labels, out=out)
    if result.fascia is not None:
        result.fascia["labels"] = about
    if out is not None and labels is not None:
        label_picture(image, labels, analysis.volume.affine, out / f"{path.name}_labels.png")
    result.seconds = time.perf_counter() - t0
    results = [result]
    if analysis.method is Method.DIXON:
        results.append(run_inphase(analysis, image, labels, about, out=out))
    return results


def run_inphase(
    dixon: Analysis,
    image: np.ndarray,
    labels: np.ndarray | None,
    about: dict[str, Any],
    *,
    out: Path | None,
) -> StudyResult:
    """The same study analysed as a T1: the in-phase sum fat + water.

    Parameters
    ----------
    dixon : Analysis
        The Dixon analysis (its volume gives the grid).
    image : ndarray of float32
        Fat + water.
    labels : ndarray or None
    about : dict
        How the labels were mapped.
    out : Path or None

    Returns
    -------
    StudyResult
    """
    t0 = time.perf_counter()
    volume = dataclasses.replace(
        dixon.volume, array=image, role=Role.T1, description="in-phase sum fat + water"
    )
    analysis = analyze_volume(
        volume, options=AnalysisOptions(method=Method.T1), study=f"{dixon.study} in-phase T1"
    )
    result = StudyResult(f"{dixon.study} (fat+water as T1)", stacks="fat + water", method="t1")
    result.analysis_seconds = time.perf_counter() - t0
    measure(result, analysis, image, labels=labels, out=out)
    if result.fascia is not None:
        result.fascia["labels"] = about
    result.seconds = time.perf_counter() - t0
    return result


# -- pictures ------------------------------------------------------------------------------


def _figure(n: int, size: float = 5.0, *, rows: int = 1):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size * n, size * rows), dpi=100, facecolor="black")
    FigureCanvasAgg(fig)
    return fig


def pick_slices(mask: np.ndarray, n: int = 3) -> list[int]:
    """``n`` slices spread over those that hold the body (a quarter, half, three quarters).

    Parameters
    ----------
    mask : ndarray of bool, shape (slice, row, col)
    n : int

    Returns
    -------
    list of int
    """
    ks = [k for k in range(mask.shape[0]) if mask[k].any()] or [0]
    return sorted({ks[min(len(ks) - 1, int(len(ks) * (i + 1) / (n + 1)))] for i in range(n)})


def zoom_window(mask2d: np.ndarray, affine: np.ndarray, *, half_mm: float = 50.0):
    """Row and column limits of a window over the back, centred on the midline.

    The window's centre lies in the body's midline (its centroid across), 20 mm
    anterior to the most posterior body pixel there, so the skin, the
    subcutaneous fat and the paraspinal muscles show.

    Parameters
    ----------
    mask2d : ndarray of bool, shape (row, col)
    affine : ndarray of shape (4, 4)
    half_mm : float

    Returns
    -------
    ((float, float), (float, float))
        ``(row_lo, row_hi), (col_lo, col_hi)``, pixels.
    """
    pix = pixel_mm(affine)
    r, c = np.nonzero(mask2d)
    if not r.size:
        return (0, mask2d.shape[0]), (0, mask2d.shape[1])
    dr, dc = posterior_step(affine)
    hr, hc = half_mm / pix[0], half_mm / pix[1]
    if dr:  # posterior along rows: the midline is a column
        cc = float(np.mean(c))
        line = r[np.abs(c - cc) <= 1]
        cr = (line.max() if dr > 0 else line.min()) - dr * 20.0 / pix[0]
    else:
        cr = float(np.mean(r))
        line = c[np.abs(r - cr) <= 1]
        cc = (line.max() if dc > 0 else line.min()) - dc * 20.0 / pix[1]
    return (cr - hr, cr + hr), (cc - hc, cc + hc)


def bench_picture(
    analysis: Analysis,
    image: np.ndarray,
    ep: EdgeProfiles,
    labels: np.ndarray | None,
    surface: np.ndarray,
    path: Path,
) -> None:
    """Three slices, whole and zoomed on the back: body outline, fat, fascia, skin points.

    Colours: body mask outline cyan, subcutaneous fat yellow (shaded), fascia
    (posterior half) orange, skin points red, manual labels green with their
    posterior surface points magenta.

    Parameters
    ----------
    analysis : Analysis
    image : ndarray, shape (slice, row, col)
    ep : EdgeProfiles
    labels : ndarray or None
    surface : ndarray of float, shape (N, 3)
    path : Path
    """
    from matplotlib.colors import ListedColormap

    affine = np.asarray(analysis.volume.affine, dtype=np.float64)
    pix = pixel_mm(affine)
    mask = analysis.body.mask
    ks = pick_slices(mask)
    fig = _figure(len(ks), rows=2)
    hi = float(np.percentile(image[mask], 99)) if mask.any() else float(image.max())
    signed = np.where(posterior_half(mask, affine), analysis.fascia.signed_mm, np.nan)
    skin = ep.skin_index()
    yellow = ListedColormap(["yellow"])
    for j, k in enumerate(ks):
        for row in range(2):
            ax = fig.add_subplot(2, len(ks), row * len(ks) + j + 1, facecolor="black")
            ax.imshow(image[k], cmap="gray", vmin=0, vmax=hi, aspect=pix[0] / pix[1])
            sat = np.ma.masked_where(~analysis.subcutaneous[k], np.ones(mask.shape[1:]))
            ax.imshow(sat, cmap=yellow, alpha=0.25, aspect=pix[0] / pix[1])
            ax.contour(mask[k], levels=[0.5], colors="cyan", linewidths=0.6 + 0.4 * row)
            if np.isfinite(signed[k]).any():
                ax.contour(signed[k], levels=[0], colors="#ff8c00", linewidths=0.9 + 0.4 * row)
            on = skin[:, 0] == k
            ax.plot(skin[on, 2], skin[on, 1], ".", color="red", ms=1.2 + 1.3 * row)
            if labels is not None:
                ax.contour(labels[k] > 0, levels=[0.5], colors="lime", linewidths=0.6)
                s = surface[surface[:, 0] == k]
                ax.plot(s[:, 2], s[:, 1], ".", color="magenta", ms=1.5 + row)
            if row:
                (r0, r1), (c0, c1) = zoom_window(mask[k], affine)
                ax.set_xlim(c0, c1)
                ax.set_ylim(r1, r0)
                title = "the back (100 mm)"
            else:
                d = ep.d[(ep.points[:, 0] == k) & ep.posterior]
                med = f"{np.median(d):+.1f}" if d.size else "-"
                title = f"{analysis.study} slice {k}: posterior d median {med} mm"
            ax.set_title(title, color="white", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.text(
        0.01,
        0.01,
        "body mask (cyan), skin points (red), subcutaneous fat (yellow), fascia (orange)"
        + (", labels (green), their posterior surface (magenta)" if labels is not None else ""),
        color="#bbbbbb",
        fontsize=7,
    )
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, facecolor="black")


def label_picture(image: np.ndarray, labels: np.ndarray, affine: np.ndarray, path: Path) -> None:
    """The manual labels over the image on three slices (to check their mapping).

    Parameters
    ----------
    image : ndarray, shape (slice, row, col)
    labels : ndarray of int, same shape
    affine : ndarray of shape (4, 4)
    path : Path
    """
    pix = pixel_mm(np.asarray(affine))
    ks = pick_slices(labels > 0)
    fig = _figure(len(ks))
    hi = float(np.percentile(image, 99.5))
    for j, k in enumerate(ks):
        ax = fig.add_subplot(1, len(ks), j + 1)
        ax.imshow(image[k], cmap="gray", vmin=0, vmax=hi, aspect=pix[0] / pix[1])
        for v, col in zip((1, 2, 3, 4), ("red", "lime", "cyan", "yellow"), strict=True):
            if (labels[k] == v).any():
                ax.contour(labels[k] == v, levels=[0.5], colors=col, linewidths=0.7)
        ax.set_title(f"labels 1-4 on slice {k}", color="white", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, facecolor="black")


# -- tables ------------------------------------------------------------------------------


def _dist(s: dict | None) -> str:
    if not s or s.get("median_abs") is None:
        return "–"
    return f"{s['median_abs']:.1f} / {s['p90_abs']:.1f} / {s['median']:+.1f}"


def _fascia(s: dict | None) -> str:
    if not s:
        return "–"
    return f"{_dist(s)} (facing back: {_dist(s.get('facing_posterior'))})"


def format_row(r: StudyResult) -> str:
    """One markdown table row for a study.

    Parameters
    ----------
    r : StudyResult

    Returns
    -------
    str
    """
    if r.refused or r.crashed:
        what = (
            f"refused: {r.refused.split('; found')[0]}"
            if r.refused
            else f"**crashed**: {r.crashed}"
        )
        return f"| {r.name} | {what[:130]} | | | | | | | | | {r.seconds:.0f} s |"
    e = r.edge
    skipped = f"{e['cut']} cut, {e['unclear']} unclear, {e['not_air']} not air, of {e['boundary']}"
    without = r.sat["slices_without"]
    sat = f"{len(without)}/{r.sat['body_slices']}" + (f" {without}" if without else "")
    cover = r.sat["outline_covered"]
    cands = ", ".join(f"{c['relation']} {c['max_diameter_mm']:.0f}" for c in r.candidates)
    return (
        f"| {r.name} | {r.method}: {r.short_stacks or r.stacks} "
        f"| {_dist(e['posterior'])} | {_dist(e['all'])} "
        f"| {skipped} | {sat} | {'–' if cover is None else f'{100 * cover:.0f}%'} "
        f"| {_fascia(r.fascia)} | {len(r.candidates)}"
        + (f" ({cands})" if cands else "")
        + f" | {'; '.join(r.warnings) or '–'} | {r.seconds:.0f} s |"
    )


def format_table(results: list[StudyResult]) -> str:
    """The markdown table of every study (for ``bench/README.md``).

    Parameters
    ----------
    results : list of StudyResult

    Returns
    -------
    str
    """
    head = (
        "| study | method: stacks | edge−skin posterior, mm (med\\|d\\| / p90\\|d\\| / med d) "
        "| edge−skin all | profiles skipped | slices w/o posterior SAT | posterior outline "
        "with SAT ≤ 10 mm | fascia vs labels, mm (med\\|d\\| / p90\\|d\\| / med d) "
        "| candidates (relation, max mm) | warnings | time |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    return "\n".join([head, *(format_row(r) for r in results)])


# -- self-check -------------------------------------------------------------------------------


def phantom_check(sample: str) -> dict[str, Any]:
    """The instrument on a phantom whose skin surface is known exactly.

    The committed sample (seed 0) is read from ``sample_data`` (or written to a
    temporary folder). Three masks are measured: the truth body (voxel centres
    inside the skin surface: its edge lies on the skin within half a pixel, so
    ``d`` ≈ 0), the analysis' body mask, and that mask eroded by one pixel (a
    cross), which should move ``d`` by about −1 pixel (−0.7 on edges at 45°).
    The skin points found are compared with the true surface (radial distance
    to the phantom's skin radius at their angle and height).

    Parameters
    ----------
    sample : str
        ``t1_axial`` or ``dixon``.

    Returns
    -------
    dict
    """
    from backmice.phantom import make_scene, write_sample

    folder = REPO / "sample_data" / sample
    tmp = None
    if not (folder / "truth.json").exists():
        tmp = tempfile.TemporaryDirectory()
        folder = Path(tmp.name) / sample
        write_sample(sample, folder, seed=0)
    study = open_study(folder)
    stacks = [s for s in study.stacks if s.role.is_image]
    vols = [load(s) for s in stacks]
    image = sum(v.array for v in vols)  # T1, or Dixon fat + water
    affine = np.asarray(vols[0].affine, dtype=np.float64)
    spacing = (float(vols[0].spacing_mm[0]), *pixel_mm(affine))
    scene = make_scene(0)
    idx = np.indices(image.shape).reshape(3, -1)
    lps = (affine @ np.vstack([idx, np.ones(idx.shape[1])]))[:3].T
    x, y, z = lps.T
    truth = (np.hypot(x, y) < scene.skin_radius(np.arctan2(y, x), z)).reshape(image.shape)
    fine = smooth_in_plane(image, (SMOOTH_MM / spacing[1], SMOOTH_MM / spacing[2]))
    body = body_mask(image, spacing_mm=spacing).mask
    cross = ndimage.generate_binary_structure(2, 1)[None]
    eroded = ndimage.binary_erosion(body, cross, border_value=1)
    out: dict[str, Any] = {"sample": sample, "pixel_mm": round(spacing[1], 2)}
    for name, mask in (("truth", truth), ("analysis", body), ("analysis_eroded", eroded)):
        ep = edge_profiles(fine, mask, affine, smoothed=True)
        sk = ep.skin_index()
        p = (affine @ np.vstack([sk.T, np.ones(len(sk))]))[:3]
        err = np.hypot(p[0], p[1]) - scene.skin_radius(np.arctan2(p[1], p[0]), p[2])
        out[name] = {
            "d": distance_stats(ep.d),
            "skin_point_error": distance_stats(err),
            "unclear": ep.n_unclear,
            "not_air": ep.n_not_air,
            "cut": ep.n_cut,
        }
    shift = out["analysis_eroded"]["d"]["median"] - out["analysis"]["d"]["median"]
    out["erosion_shift_px"] = round(shift / spacing[1], 2)
    if tmp is not None:
        tmp.cleanup()
    return out


def erosion_check(path: Path) -> dict[str, Any] | None:
    """Erode a real study's body mask by a pixel: ``d`` should move by about −1 pixel.

    Only the body stage is run (:func:`backmice.segment.body_mask`), on the
    image the analysis would choose.

    Parameters
    ----------
    path : Path

    Returns
    -------
    dict or None
        None when the study is refused.
    """
    from backmice.analysis import choose_stacks

    try:
        study = open_study(path)
        method, stacks = choose_stacks(study)
    except InputError:
        return None
    vols = [load(s) for s in stacks]
    image = vols[0].array if method is Method.T1 else vols[0].array + vols[1].array
    affine = np.asarray(vols[0].affine, dtype=np.float64)
    pix = pixel_mm(affine)
    body = body_mask(image, spacing_mm=(float(vols[0].spacing_mm[0]), *pix)).mask
    fine = smooth_in_plane(image, (SMOOTH_MM / pix[0], SMOOTH_MM / pix[1]))
    cross = ndimage.generate_binary_structure(2, 1)[None]
    a = distance_stats(edge_profiles(fine, body, affine, smoothed=True).d)
    b = distance_stats(
        edge_profiles(
            fine, ndimage.binary_erosion(body, cross, border_value=1), affine, smoothed=True
        ).d
    )
    return {
        "study": path.name,
        "d": a,
        "d_eroded": b,
        "erosion_shift_px": round((b["median"] - a["median"]) / pix[0], 2),
    }


def selfcheck(root: Path, studies: list[str] | None) -> int:
    """Check the instrument: phantoms with known skin, and the one-pixel erosion.

    Passes when, on each phantom, the truth mask reads ``|d|`` median ≤ half a
    pixel, the skin points lie within half a pixel of the true surface (median),
    and every erosion moves the median ``d`` by −0.6 to −1.2 pixels.

    Parameters
    ----------
    root : Path
    studies : list of str or None

    Returns
    -------
    int
        Exit code: 0 passed, 3 failed.
    """
    ok = True
    for sample in ("t1_axial", "dixon"):
        r = phantom_check(sample)
        half = 0.5 * r["pixel_mm"]
        good = (
            r["truth"]["d"]["median_abs"] <= half
            and r["truth"]["skin_point_error"]["median_abs"] <= half
            and r["analysis"]["skin_point_error"]["median_abs"] <= half
            and -1.2 <= r["erosion_shift_px"] <= -0.6
        )
        ok &= good
        print(f"phantom {sample} ({'ok' if good else 'FAILED'}): {json.dumps(r)}")
    if root.is_dir():
        for path in study_dirs(root, studies):
            r = erosion_check(path)
            if r is None:
                print(f"{path.name}: refused, no erosion check")
                continue
            good = -1.2 <= r["erosion_shift_px"] <= -0.6
            ok &= good
            print(f"real {path.name} ({'ok' if good else 'FAILED'}): {json.dumps(r)}")
    print("selfcheck", "passed" if ok else "FAILED")
    return 0 if ok else 3


# -- main --------------------------------------------------------------------------------


def study_dirs(root: Path, names: list[str] | None) -> list[Path]:
    """The study folders under ``root`` (all, or those named).

    Parameters
    ----------
    root : Path
    names : list of str or None

    Returns
    -------
    list of Path
    """
    dirs = sorted(p for p in root.iterdir() if p.is_dir())
    if names:
        dirs = [p for p in dirs if p.name in names]
        missing = set(names) - {p.name for p in dirs}
        if missing:
            print(f"no such study under {root}: {', '.join(sorted(missing))}", file=sys.stderr)
    return dirs


def print_result(r: StudyResult) -> None:
    """Print one study's numbers as text."""
    if r.refused or r.crashed:
        what = f"refused: {r.refused}" if r.refused else f"CRASHED: {r.crashed}"
        print(f"{r.name}: {what} ({r.seconds:.1f} s)")
        return
    print(f"{r.name}: {r.method}: {r.stacks}")
    e = r.edge
    print(
        f"  body edge - skin (mm, med|d| / p90|d| / med d): posterior {_dist(e['posterior'])} "
        f"(n {e['posterior']['n']}), all {_dist(e['all'])} (n {e['all']['n']}); skipped "
        f"{e['cut']} cut by the image, {e['unclear']} unclear, {e['not_air']} not from air, "
        f"of {e['boundary']}"
    )
    print(
        f"  slices without posterior subcutaneous fat: {len(r.sat['slices_without'])} of "
        f"{r.sat['body_slices']} {r.sat['slices_without']}; posterior outline with fat "
        f"within {SAT_REACH_MM:g} mm: {r.sat['outline_covered']}"
    )
    if r.fascia is not None:
        print(
            f"  fascia at the labels' posterior surface (mm): {_dist(r.fascia)} "
            f"(n {r.fascia['n']}); where it faces within 45° of posterior: "
            f"{_dist(r.fascia['facing_posterior'])} (n {r.fascia['facing_posterior']['n']})\n"
            f"  labels: {r.fascia.get('labels')}"
        )
    print(f"  candidates: {r.candidates or 'none'}")
    print(f"  warnings: {r.warnings or 'none'}")
    print(f"  time {r.seconds:.1f} s (analysis {r.analysis_seconds:.1f} s)")


def main(argv: list[str] | None = None) -> int:
    """Run the bench (see the module's docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--studies", nargs="+", metavar="NAME")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON ('-': stdout)")
    parser.add_argument("--selfcheck", action="store_true")
    args = parser.parse_args(argv)
    args.root = args.root or default_root()
    if args.selfcheck:
        return selfcheck(args.root, args.studies)
    if not args.root.is_dir():
        print(f"real studies missing: {args.root} does not exist; nothing to measure")
        return 0
    results: list[StudyResult] = []
    for path in study_dirs(args.root, args.studies):
        try:
            found = run_study(path, out=args.out)
        except Exception as exc:  # a crash on one study is reported; the others still run
            traceback.print_exc(file=sys.stderr)
            found = [StudyResult(path.name, crashed=f"{type(exc).__name__}: {exc}")]
        for r in found:
            if args.json != "-":
                print_result(r)
            results.append(r)
    payload = json.dumps([dataclasses.asdict(r) for r in results], indent=1)
    status = 1 if any(r.crashed for r in results) else 0
    if args.json == "-":
        print(payload)
        return status
    if args.json:
        Path(args.json).write_text(payload)
    print()
    print(format_table(results))
    print(f"\npictures in {args.out}")
    return status


if __name__ == "__main__":
    sys.exit(main())
