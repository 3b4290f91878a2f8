"""Plotly draws each chart once, in a real browser: every tab of the two explorers, and the analysis pages.

Plotly grows a margin that is too small for the tick labels, axis titles or colour bar placed in it only
after drawing the whole figure, and then draws it all again; our figures reserve that room up front
(``mechmnistic.viz.common.reserved_margin``). A chart whose final margins differ from the ones it asked for
was drawn twice. And tick labels are allowed to overflow (``ui.plotly_setup``), which spares Plotly a
quadratic measuring pass over them.
"""

from __future__ import annotations

import pytest

from harness.browser import wait_until_finished
from ui.links import ACTIVATIONS, CLUSTERS, EARLIER, IMPORTANT, ON_INPUT, TOP_EXAMPLES

from .conftest import assert_no_exception, wait_for_app

NEURON, CLASSIFY = "/neuron?model=mlp-1x64&layer=layers.0&unit=5", "/classify?model=mlp-1x64&test_index=7"
#: (deep link, text on the finished page, charts at least): every tab of both explorers, and the default tabs
#: of deeper MLP units, conv channels and CNN units, whose charts differ.
PAGES = [
    (NEURON, "layers.0 · neuron 5", 4),
    *((f"{NEURON}&view={view.slug}", "layers.0 · neuron 5", charts)
      for view, charts in ((ON_INPUT, 3), (TOP_EXAMPLES, 1), (CLUSTERS, 3))),
    ("/neuron?model=mlp-2x64&layer=layers.1&unit=3", "layers.1 · neuron 3", 4),
    ("/neuron?model=cnn-digits&layer=fc1&unit=17", "fc1 · neuron 17", 4),
    ("/neuron?model=cnn-digits&layer=conv2&unit=7", "conv2 · channel 7", 4),
    (f"/neuron?model=cnn-digits&layer=conv2&unit=7&view={ON_INPUT.slug}", "conv2 · channel 7", 3),
    (CLASSIFY, "Predicted class", 4),
    *((f"{CLASSIFY}&panel={panel.slug}", "Predicted class", charts)
      for panel, charts in ((IMPORTANT, 4), (ACTIVATIONS, 4))),
    (f"/classify?model=mlp-2x64&test_index=7&panel={EARLIER.slug}", "Predicted class", 4),
    ("/classify?model=challenge-cnn&test_index=7", "Predicted class", 4),
    # The analysis pages' charts, as a link without settings opens them.
    ("/ablations?model=challenge-cnn", "Direct logit attribution", 6),
    ("/hypothesis?model=challenge-cnn", "Scores by model prediction", 2),
    ("/geometry?model=challenge-cnn", "Activation geometry", 4),
    ("/walkthrough", "The geometry of fc1", 7),
]

#: Per chart: its title, the margins it asked for and the ones it was drawn with, and its axes' overflow rule.
CHARTS_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].map(gd => {
    const layout = gd._fullLayout, asked = layout.margin, drawn = layout._size;
    return {title: (layout.title && layout.title.text) || '',
            asked: [asked.l, asked.r, asked.t, asked.b], drawn: [drawn.l, drawn.r, drawn.t, drawn.b],
            overflow: [...new Set(Object.keys(layout).filter(k => /^[xy]axis\\d*$/.test(k))
                                  .map(k => layout[k].ticklabeloverflow))]};
})"""


@pytest.mark.browser
@pytest.mark.parametrize(("path", "text", "charts"), PAGES, ids=[path for path, *_ in PAGES])
def test_each_chart_is_drawn_once_with_the_margins_it_reserved(page, app_url, path, text, charts):
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(app_url + path)
    wait_for_app(page, timeout_ms=300_000)  # the analysis pages' first visit computes for a while
    wait_until_finished(page, text, charts)
    assert_no_exception(page)
    drawn = page.evaluate(CHARTS_JS)
    assert len(drawn) >= charts
    for chart in drawn:
        assert chart["drawn"] == chart["asked"], f"{chart['title']}: margins grew, so Plotly drew it twice"
        assert chart["overflow"] in ([], ["allow"]), chart
