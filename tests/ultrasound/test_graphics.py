"""What scanners draw on the image is masked before the analysis (issue 17, item 2).

The real files are pydicom-data's: GE LOGIQ 700 (WG04 ``US1_*``: power Doppler in
two boxes, burned-in text above and below the tissue, colour bars, a scale bar;
no regions, so the whole frame is analysed in px) and ALOKA SSD-4000 (palette
colour: green markers and cursor, white text on the sector's corners, a grey bar
that is its own region, depth ticks).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

import backmice
from backmice.io.model import RegionOverlay
from backmice.phantom.font import draw_text
from backmice.ultrasound import analyze_frame, line_rows
from backmice.ultrasound.graphics import fill_graphics, scanner_graphics
from tests.conftest import real_file

#: The GE frame: the seed inside the left lymph node (row, col), the tissue's top row,
#: and the rows of the Doppler boxes' top and bottom edges.
GE_SEED = (230.0, 260.0)
GE_TISSUE_TOP = 108
GE_BOX_ROWS = (148.5, 293.0)
GE_BOX_COLS = (88, 547)


def _volume(name):
    return backmice.load(backmice.open_study(real_file(name)).stacks[0])


def _colour(volume):
    c = volume.color[0].astype(int)
    return (c.max(axis=-1) - c.min(axis=-1)) > 24


@pytest.fixture(scope="module")
def ge():
    return _volume("US1_UNCR.dcm")


@pytest.fixture(scope="module")
def ge_seeded(ge):
    return analyze_frame(ge.array[0], spacing_mm=None, seed_rc=GE_SEED, color=ge.color[0])


@pytest.fixture(scope="module")
def aloka():
    return _volume("gdcm-US-ALOKA-16.dcm")


def _speckle(shape, seed=3):
    rng = np.random.default_rng(seed)
    field = ndi.gaussian_filter(rng.rayleigh(size=shape), (1.5, 3.0))
    return np.rint(np.clip(field / field.max() * 160, 0, 255)).astype(np.uint8)


def test_text_lines_and_colour_are_found_and_speckle_is_not():
    frame = _speckle((200, 300))
    speckle_only = scanner_graphics(frame.astype(np.float32))
    draw_text(frame, "DEPTH 4.0CM", 20, 30, scale=2, value=230)  # text over the tissue
    frame[120:122, 40:260] = 255  # a box edge
    frame[130:170, 200] = 200  # a caliper line
    colour = np.repeat(frame[..., None], 3, axis=-1)
    colour[140:160, 60:100] = (230, 120, 20)  # power Doppler
    luma = colour.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    g = scanner_graphics(luma, color=colour)
    assert g.colour[140:160, 60:100].all() and g.colour.sum() == 800
    assert g.drawn[120:122, 40:260].all()
    assert g.drawn[130:170, 200].all()
    text = frame[18:40, 28:200] == 230
    assert g.drawn[18:40, 28:200][text].all()
    assert speckle_only.mask.mean() < 0.005  # speckle is not drawn
    filled = fill_graphics(luma, g.mask)
    assert filled[121, 150] < 200  # the box edge is gone
    assert np.array_equal(filled[~g.mask], luma[~g.mask])


def test_region_overlays_are_masked_whole_or_on_their_border():
    frame = np.full((100, 120), 60.0, dtype=np.float32)
    bar = RegionOverlay(0, 10, 9, 40, 13)  # a grey bar
    flow = RegionOverlay(40, 20, 100, 80, 2)  # a colour-flow box
    g = scanner_graphics(frame, overlays=(bar, flow))
    assert g.regions[10:41, 0:10].all()
    assert g.regions[20, 40:101].all() and g.regions[50, 40] and g.regions[50, 100]
    assert not g.regions[50, 70]  # inside the colour-flow box is tissue


def test_ge_skin_follows_the_tissue_not_the_text(ge, ge_seeded):
    skin = line_rows(ge_seeded.skin, ge.array.shape[2])
    inner = slice(20, 620)
    assert np.all(np.abs(skin[inner] - GE_TISSUE_TOP) <= 4), skin[inner].min()
    # Unmasked, the same frame's skin climbs onto the burned-in text and the boxes.
    raw = analyze_frame(ge.array[0], spacing_mm=None, candidates=False, mask_graphics=False)
    assert np.abs(line_rows(raw.skin, ge.array.shape[2])[inner] - GE_TISSUE_TOP).max() > 20


def test_ge_outline_is_not_on_the_doppler_and_the_fascia_not_on_its_box(ge, ge_seeded):
    colour = _colour(ge)
    near = ndi.binary_dilation(colour, iterations=2)
    (nodule,) = ge_seeded.nodules
    c = np.rint(nodule["contour"]).astype(int)
    on_colour = near[np.clip(c[:, 0], 0, 479), np.clip(c[:, 1], 0, 639)].mean()
    assert on_colour < 0.15, on_colour
    # The outline holds the node's Doppler signal instead of tracing it.
    left = colour & (np.arange(640)[None, :] < 316)
    assert (ge_seeded.labels > 0)[left].mean() > 0.6
    fascia = line_rows(ge_seeded.fascia, 640)[GE_BOX_COLS[0] : GE_BOX_COLS[1]]
    on_box = np.min([np.abs(fascia - r) for r in GE_BOX_ROWS], axis=0) < 4
    assert on_box.mean() < 0.2, on_box.mean()
    assert ge_seeded.graphics[colour].all()
    assert any("scanner graphics masked" in w for w in ge_seeded.warnings)


def test_ge_unmasked_traces_the_doppler(ge):
    # The contrast that makes the test above mean something.
    raw = analyze_frame(ge.array[0], spacing_mm=None, seed_rc=GE_SEED, mask_graphics=False)
    near = ndi.binary_dilation(_colour(ge), iterations=2)
    c = np.rint(raw.nodules[0]["contour"]).astype(int)
    assert near[np.clip(c[:, 0], 0, 479), np.clip(c[:, 1], 0, 639)].mean() > 0.3


def test_lossy_ge_copy_keeps_the_skin_off_the_text():
    # JPEG 2000 irreversible: the text is no longer flat, the narrow bits left are not skin.
    volume = _volume("US1_J2KI.dcm")
    a = analyze_frame(volume.array[0], spacing_mm=None, candidates=False, color=volume.color[0])
    skin = line_rows(a.skin, 640)[20:620]
    assert np.all(np.abs(skin - GE_TISSUE_TOP) <= 4)


def test_aloka_grey_bar_markers_and_text_are_masked_and_the_skin_avoids_them(aloka):
    assert aloka.overlays == (RegionOverlay(0, 16, 31, 79, 13),)
    a = analyze_frame(
        aloka.array[0],
        spacing_mm=tuple(aloka.spacing_mm[1:]),
        candidates=False,
        color=aloka.color[0],
        overlays=aloka.overlays,
    )
    g = a.graphics
    assert g[16:80, 0:32].all()  # the grey bar (its own region)
    assert g[_colour(aloka)].all()  # green markers, cursor and "L0"
    text = aloka.array[0][5:40, 240:300] == 190  # "127/128 20Hz", white on the sector's corner
    assert text.sum() > 300 and g[5:40, 240:300][text].all()
    rows, cols = g.shape
    skin = np.rint(line_rows(a.skin, cols)).astype(int)
    # The skin crosses graphics only where the arrow cursor lies on the sector's edge.
    assert g[np.clip(skin, 0, rows - 1), np.arange(cols)].mean() <= 0.02
    # Under the text the skin is the sector's edge, below the text's rows.
    text_cols = np.flatnonzero(text.any(axis=0)) + 240
    assert skin[text_cols].min() > np.flatnonzero(text.any(axis=1)).max() + 5
