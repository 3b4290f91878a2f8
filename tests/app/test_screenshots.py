"""The README's screenshots, taken in a real browser from the app as ``make run`` serves it.

Every run of the suite takes them (so a page that stops rendering fails
here); ``make screenshots`` runs this file with ``MECHMNISTIC_SCREENSHOTS``
set to ``docs/images``, which replaces the README's pictures, so they never
go stale.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from harness.browser import wait_until_finished

from .conftest import assert_no_exception

#: file name -> (path on the app, text the finished page shows, charts it draws)
SHOTS = {
    "neuron-explorer.png": ("/neuron?model=mlp-1x64&layer=layers.0&unit=9", "layers.0 · neuron 9", 3),
    "classification-explorer.png": ("/classify?model=mlp-1x64&test_index=8", "test image #8", 4),
    "walkthrough.png": ("/walkthrough", "Walkthrough: the challenge", 3),
    "dictionaries.png": ("/dictionaries?model=mlp-1x64&section=scoreboard",
                         "neurons: median label entropy", 1),
}


@pytest.mark.browser
@pytest.mark.parametrize("name", SHOTS)
def test_screenshot(name, page, app_url, tmp_path):
    folder = Path(os.environ.get("MECHMNISTIC_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path, text, charts = SHOTS[name]
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(app_url + path)
    wait_until_finished(page, text, charts)
    assert_no_exception(page)
    target = folder / name
    page.screenshot(path=str(target))
    with Image.open(target) as image:
        assert image.size == (1400, 900)
        colours = image.convert("L").getextrema()
        assert colours[1] - colours[0] > 100, "the page shows something, not a blank screen"
    assert target.stat().st_size < 1_000_000
