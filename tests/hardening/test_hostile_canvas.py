"""Hostile drawings, on every page with a canvas: blank, all white, a single dot, a speck, junk from the component.

Each row injects what the drawing component would report (a PNG data URL,
as ../shared/notes/testing-streamlit.md describes) into the page's canvas and
states what the visitor sees: the page's "nothing drawn" note, a digit made
from the dot exactly as ``preprocess_drawing`` makes it, or a warning that the
drawing could not be read. Never an exception, never a file written.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from mechmnistic.preprocess import CANVAS_SIZE, MIN_INK_PIXELS, preprocess_drawing

from .disk import changes, snapshot

APP = "../../app.py"
NOTHING_DRAWN = "Nothing drawn yet"
UNREADABLE = "The drawing could not be read"


def _canvas(fill: int = 0) -> np.ndarray:
    """An opaque RGBA canvas of one grey level (0: the app's black background)."""
    image = np.full((CANVAS_SIZE, CANVAS_SIZE, 4), fill, np.uint8)
    image[..., 3] = 255
    return image


def _with_disc(radius: float, centre=(140, 140)) -> np.ndarray:
    """A black canvas with one white disc (a click with the default stroke is a disc of radius 9)."""
    image = _canvas()
    ys, xs = np.mgrid[:CANVAS_SIZE, :CANVAS_SIZE]
    image[(ys - centre[0]) ** 2 + (xs - centre[1]) ** 2 <= radius**2, :3] = 255
    return image


def _png_url(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _reported(url: str) -> dict:
    return {"drawing": {"raw": {"objects": [{"type": "path"}]}, "data": url}}


SPECK = _with_disc(1.5)  # a dozen pixels: below MIN_INK_PIXELS
assert 0 < (SPECK[..., 0] > 0).sum() < MIN_INK_PIXELS
CANVASES = {
    "blank": (_png_url(_canvas()), NOTHING_DRAWN),
    "all-white": (_png_url(_canvas(255)), NOTHING_DRAWN),  # read as dark ink on white paper: no ink at all
    "single-pixel": (_png_url(_with_disc(0)), NOTHING_DRAWN),
    "speck": (_png_url(SPECK), NOTHING_DRAWN),
    "single-dot": (_png_url(_with_disc(9)), None),  # a digit-sized blob: classified like any drawing
    "dot-in-a-corner": (_png_url(_with_disc(9, centre=(3, 276))), None),
    "transparent": (_png_url(np.zeros((CANVAS_SIZE, CANVAS_SIZE, 4), np.uint8)), NOTHING_DRAWN),
    "tiny-image": (_png_url(_with_disc(9)[130:150, 130:150]), None),
    "not-a-png": ("data:image/png;base64," + base64.b64encode(b"<script>alert(1)</script>").decode(), UNREADABLE),
    "bad-base64": ("data:image/png;base64,%%%not base64%%%", UNREADABLE),
}
DOT_IMAGES = {"single-dot": _with_disc(9), "dot-in-a-corner": _with_disc(9, centre=(3, 276)),
              "tiny-image": _with_disc(9)[130:150, 130:150]}


@dataclass(frozen=True)
class CanvasPage:
    page: str
    canvas_key: str
    choose_drawing: dict  # widget key -> value that shows the canvas


PAGES = {
    "classify": CanvasPage("classification_explorer", "classify_canvas_0", {"classify_source": "Drawing"}),
    "hypothesis-template": CanvasPage("hypothesis", "hyp_canvas", {"hyp_source": "Draw"}),
    "ablations-patch-source": CanvasPage("ablations", "abl_canvas", {"abl_patch_source": "drawing"}),
}


def _open_with_drawing(page: CanvasPage, url: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=600).run()
    at.switch_page(f"app_pages/{page.page}.py").run()
    for key, value in page.choose_drawing.items():
        at.radio(key=key).set_value(value).run()
    at.session_state[page.canvas_key] = _reported(url)
    return at.run()


def _notes(at: AppTest) -> list[str]:
    return [element.value for kind in ("warning", "error", "info") for element in getattr(at, kind)]


@pytest.mark.slow
@pytest.mark.parametrize("canvas", CANVASES, ids=CANVASES)
@pytest.mark.parametrize("where", PAGES, ids=PAGES)
def test_a_hostile_drawing_gets_a_clear_note_and_changes_nothing(where, canvas):
    url, message = CANVASES[canvas]
    before = snapshot()
    at = _open_with_drawing(PAGES[where], url)
    assert not at.exception, at.exception[0].value
    notes = _notes(at)
    if message is None:  # a real drawing: no note about it
        assert not any(NOTHING_DRAWN in n or UNREADABLE in n for n in notes), notes
        if where == "classify":
            assert any(m.value.startswith("#### Predicted class") for m in at.markdown)
    else:
        assert any(message in n for n in notes), notes
    assert changes(before, snapshot()) == []


@pytest.mark.parametrize("canvas", DOT_IMAGES, ids=DOT_IMAGES)
def test_a_dot_becomes_a_centred_blob(canvas):
    """What the pages classify for a dot: a 20-pixel disc, its centre of mass at the field's centre."""
    image = preprocess_drawing(DOT_IMAGES[canvas]).image
    assert image.shape == (28, 28) and image.dtype == np.uint8
    rows, cols = np.nonzero(image > 0)
    assert rows.max() - rows.min() + 1 == 20 and cols.max() - cols.min() + 1 == 20
    ys, xs = np.mgrid[:28, :28]
    mass = image.astype(float) / image.sum()
    assert abs((ys * mass).sum() - 14) <= 1 and abs((xs * mass).sum() - 14) <= 1
