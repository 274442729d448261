"""What the scanner draws on the image: found, masked and filled before the analysis.

Scanners burn into the B-mode frame colour and power Doppler pixels with the
box around them, text, calipers, body markers, a depth scale, focus markers
and grey or colour bars. None of it is tissue, and all of it has edges the
skin, fascia and nodule finders would follow. :func:`scanner_graphics` finds
it in three ways:

- **colour**: a B-mode pixel is grey (R = G = B); a pixel whose channels
  differ by more than :data:`COLOUR_CHROMA` of 255 is Doppler, a coloured
  marker or coloured text;
- **drawn**: text, lines, calipers, ticks and markers are drawn with one exact
  value (or RGB triple) each: a connected run of at least :data:`MIN_PIXELS`
  pixels of exactly the same value, thin (no pixel farther than
  :data:`MAX_HALF_WIDTH_PX` from its edge) and dropping across its edge, on
  average, by :data:`MIN_CONTRAST` of the image's range is drawn. Speckle is
  never flat over several pixels with a step all round. Needs integer-valued
  pixels (stored values, or the RGB of a colour file); after a lossy
  compression the strokes are no longer flat and only part of them is found;
- **regions**: the file's other ultrasound regions lying on the tissue region
  (``Volume.overlays``): a grey or colour bar is masked whole, a colour-flow
  box on its border (where the box is drawn).

The mask is grown by one pixel (anti-aliased edges) and :func:`fill_graphics`
replaces its pixels by the normalised Gaussian average of the unmasked pixels
around them (normalised convolution, scales doubling until every hole is
filled), so the analysis sees tissue with no edge where the graphics were.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

from backmice.io.model import RegionOverlay

__all__ = [
    "COLOUR_CHROMA",
    "ScannerGraphics",
    "fill_graphics",
    "scanner_graphics",
]

log = logging.getLogger(__name__)

#: Largest difference between the R, G and B of a grey pixel (of 255): above it, colour.
COLOUR_CHROMA = 24
#: Fewest pixels of one exact value that make a drawn stroke.
MIN_PIXELS = 4
#: Largest distance of a stroke's pixel from its edge, px (strokes up to about 5 px wide).
MAX_HALF_WIDTH_PX = 3.0
#: A stroke drops across its edge by this fraction of the image's range, on average.
MIN_CONTRAST = 0.15
#: RegionDataType of a colour-flow region (masked on its border only).
COLOUR_FLOW = 2
#: Width of a colour-flow box's border that is masked, px either side.
BOX_BORDER_PX = 2


@dataclass(slots=True)
class ScannerGraphics:
    """The scanner's graphics on one frame, by how they were found.

    Attributes
    ----------
    colour : ndarray of bool, shape (row, col)
        Colour pixels (Doppler, coloured markers and text).
    drawn : ndarray of bool, shape (row, col)
        Flat, thin, bright strokes: text, lines, boxes, calipers, ticks, markers.
    regions : ndarray of bool, shape (row, col)
        Grey and colour bars and colour-flow box borders from the file's regions.
    mask : ndarray of bool, shape (row, col)
        All of them, grown by one pixel.
    """

    colour: NDArray
    drawn: NDArray
    regions: NDArray
    mask: NDArray

    def summary(self) -> str:
        """One line for the warnings: how much was masked, and why."""
        n = self.mask.size
        parts = [
            f"{what} {100.0 * float(m.sum()) / n:.1f} %"
            for what, m in (
                ("colour", self.colour),
                ("text and lines", self.drawn),
                ("bars and boxes", self.regions),
            )
            if m.any()
        ]
        return (
            f"scanner graphics masked on {100.0 * float(self.mask.sum()) / n:.1f} % of the "
            f"frame ({', '.join(parts)}): filled from the tissue around them"
        )


def _drawn(image: NDArray, key: NDArray) -> NDArray:
    """Pixels of flat (one exact value), thin, bright strokes."""
    from skimage.measure import label

    a = np.asarray(image, dtype=np.float64)
    lo, hi = np.percentile(a, [1.0, 99.5])
    span = max(float(hi - lo), 1e-6)
    # Connected runs of exactly equal values (background pixels are not strokes).
    lab = label(np.where(a > lo, key + 1, 0), connectivity=2)
    n = int(lab.max())
    if n == 0:
        return np.zeros(a.shape, dtype=bool)
    area = np.bincount(lab.ravel(), minlength=n + 1)
    # The step down across the run's edge, pixel pair by pixel pair: a drawn stroke
    # drops to what lies under it at once; a speckle plateau slopes away.
    step = np.zeros(n + 1)
    pairs = np.zeros(n + 1)
    padded_lab = np.pad(lab, 1)
    padded = np.pad(a, 1, mode="edge")
    rows, cols = a.shape
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if dr == 0 and dc == 0:
                continue
            other = padded_lab[1 + dr : 1 + dr + rows, 1 + dc : 1 + dc + cols]
            edge = (lab > 0) & (other != lab)
            diff = a - padded[1 + dr : 1 + dr + rows, 1 + dc : 1 + dc + cols]
            step += np.bincount(lab[edge], weights=diff[edge], minlength=n + 1)
            pairs += np.bincount(lab[edge], minlength=n + 1)
    contrast = step / np.maximum(pairs, 1) / span
    keep = (area >= MIN_PIXELS) & (contrast >= MIN_CONTRAST)
    keep[0] = False
    if not keep.any():
        return np.zeros(a.shape, dtype=bool)
    # Thick: a pixel whose whole neighbourhood out to the half-width is the same run.
    size = 2 * int(MAX_HALF_WIDTH_PX) + 1
    interior = (ndi.minimum_filter(lab, size=size) == lab) & (
        ndi.maximum_filter(lab, size=size) == lab
    )
    thick = np.unique(lab[interior & (lab > 0)])
    keep[thick] = False
    return keep[lab]


def scanner_graphics(
    image: NDArray,
    *,
    color: NDArray | None = None,
    overlays: tuple[RegionOverlay, ...] = (),
) -> ScannerGraphics:
    """Find what the scanner drew on a frame.

    Parameters
    ----------
    image : ndarray of shape (row, col)
        The frame's grey levels (for a colour file, the luminance).
    color : ndarray of uint8, shape (row, col, 3), optional
        The frame's RGB (``Volume.color[k]``), when the file is in colour.
    overlays : tuple of RegionOverlay
        Other ultrasound regions lying on the frame (``Volume.overlays``), in
        its pixels.

    Returns
    -------
    ScannerGraphics
    """
    a = np.asarray(image)
    if a.ndim != 2:
        raise ValueError(f"scanner_graphics needs one 2D frame, not shape {a.shape}")
    shape = a.shape
    colour = np.zeros(shape, dtype=bool)
    key = None
    if color is not None:
        c = np.asarray(color)
        if c.shape != (*shape, 3):
            raise ValueError(f"the colour frame is {c.shape}, not {(*shape, 3)}")
        c = c.astype(np.int64)
        colour = (c.max(axis=-1) - c.min(axis=-1)) > COLOUR_CHROMA
        key = (c[..., 0] << 32) + (c[..., 1] << 16) + c[..., 2]
    elif a.size and np.issubdtype(a.dtype, np.number) and np.all(a == np.rint(a)):
        key = np.rint(a).astype(np.int64)
    drawn = np.zeros(shape, dtype=bool) if key is None else _drawn(a, key) & ~colour
    regions = np.zeros(shape, dtype=bool)
    for o in overlays:
        r0, r1 = max(o.y0, 0), min(o.y1, shape[0] - 1)
        c0, c1 = max(o.x0, 0), min(o.x1, shape[1] - 1)
        if r1 < r0 or c1 < c0:
            continue
        if o.data_type == COLOUR_FLOW:
            box = np.zeros(shape, dtype=bool)
            box[r0 : r1 + 1, c0 : c1 + 1] = True
            inner = ndi.binary_erosion(box, iterations=BOX_BORDER_PX, border_value=1)
            outer = ndi.binary_dilation(box, iterations=BOX_BORDER_PX)
            regions |= outer & ~inner
        else:
            regions[r0 : r1 + 1, c0 : c1 + 1] = True
    mask = ndi.binary_dilation(colour | drawn | regions, iterations=1)
    return ScannerGraphics(colour=colour, drawn=drawn, regions=regions, mask=mask)


def fill_graphics(image: NDArray, mask: NDArray) -> NDArray:
    """The frame with the masked pixels filled from the unmasked ones around them.

    Normalised convolution: each masked pixel gets the Gaussian-weighted mean of
    the unmasked pixels, at the smallest scale (σ = 1, 2, 4, ... px) where they
    weigh at least a fifth of the kernel.

    Parameters
    ----------
    image : ndarray of shape (row, col)
    mask : ndarray of bool, shape (row, col)

    Returns
    -------
    ndarray of float32, shape (row, col)
        Unmasked pixels unchanged.
    """
    a = np.asarray(image, dtype=np.float64)
    m = np.asarray(mask, dtype=bool)
    out = a.astype(np.float32)
    if not m.any():
        return out
    if m.all():
        return np.zeros_like(out)
    valid = (~m).astype(np.float64)
    weighted = a * valid
    todo = m.copy()
    sigma = 1.0
    while todo.any() and sigma <= 2 * max(a.shape):
        den = ndi.gaussian_filter(valid, sigma, mode="nearest")
        ok = todo & (den >= 0.2)
        if ok.any():
            num = ndi.gaussian_filter(weighted, sigma, mode="nearest")
            out[ok] = (num[ok] / den[ok]).astype(np.float32)
            todo &= ~ok
        sigma *= 2.0
    if todo.any():
        out[todo] = float(np.median(a[~m]))
    return out
