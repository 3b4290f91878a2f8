"""Deep links between pages: the one place that knows each page's URL and parameters.

Every view is reproducible from its URL. Pages link to each other only through
these helpers, so a click-through (a neuron in a heatmap, a point in a scatter)
always lands on the right page with the right parameters.

URL contracts (``model`` is always the zoo name):

* Neuron Explorer    ``/neuron?model=M&layer=L&unit=U`` (``neuron=U`` in older links; conv channels: ``unit`` is
  the channel; optional ``pos=R,C`` for the channel at one cell of its map, and ``test_index=I`` or
  ``train_index=I`` for the input its on-one-input views show; ``view=`` the slug of one of ``NEURON_VIEWS``,
  the open tab; ``basis=dictionary:ID`` for a latent of one of the layer's dictionaries, ``unit`` then being
  the latent)
* Classification     ``/classify?model=M&test_index=I`` (or ``train_index=I`` for a training image; ``panel=`` the
  slug of one of ``CLASSIFY_TABS``, the open tab)
* Activation geometry ``/geometry?model=M&layer=L&color=...&dirs=...`` and Feature visualisation
  ``/features?model=M&layer=L&target=units&units=...`` (or ``target=directions&dirs=...``)
* Dictionaries       ``/dictionaries?model=M&layer=L&sae=ID`` (a layer's dictionaries: quality, training,
  sweeps, feature splitting, the polysemanticity scoreboard)
* Ablations          ``/ablations?model=M&...`` and Hypothesis & scrubbing ``/hypothesis?model=M&...``, both
  carrying the hypothesis settings of ``ui.hypothesis_controls`` (``layer``, ``template``, ``lo``, ``hi``, ...)
"""

from __future__ import annotations

from urllib.parse import urlencode

import streamlit as st

from .page_list import PAGES
from .tabs import Tab


def _page(script: str) -> str:
    """The script path of a page in the one list of pages (``ui.page_list``)."""
    return next(entry.path for entry in PAGES if entry.script == script)


NEURON_PAGE = _page("neuron_explorer")
CLASSIFY_PAGE = _page("classification_explorer")
ABLATIONS_PAGE = _page("ablations")
HYPOTHESIS_PAGE = _page("hypothesis")
GEOMETRY_PAGE = _page("geometry")
FEATURES_PAGE = _page("feature_viz")
DICTIONARIES_PAGE = _page("dictionaries")
#: Each page's address, from the same list (the default page is served at ``/``).
URL_PATHS = {entry.path: entry.url_path or "" for entry in PAGES}
# The tabs of the two explorers: only the open one's figures are built and drawn, and the URL names it by its
# slug (``ui.tabs``: old links that carry a label still open it). The parameter names are also the tabs'
# session-state keys, which every page shares: they must differ between pages and from every other key.
NEURON_VIEW_PARAM = "view"
READS = Tab("weights", "Weights and firing")
ON_INPUT = Tab("input", "On one input")
TOP_EXAMPLES = Tab("top", "Top examples")
CLUSTERS = Tab("clusters", "Feature clusters")
NEURON_VIEWS = (READS, ON_INPUT, TOP_EXAMPLES, CLUSTERS)
CLASSIFY_PANEL_PARAM = "panel"
EFFECTS = Tab("effects", "Logit effects")
IMPORTANT = Tab("important", "Important units")
ACTIVATIONS = Tab("activations", "Activations and weights")
EARLIER = Tab("earlier", "Earlier layers")
LATENTS = Tab("latents", "In latents")
CLASSIFY_PANELS = (EFFECTS, IMPORTANT, ACTIVATIONS)  # then EARLIER (which says when a model has none)
#: Every tab, in order: a model without earlier layers or dictionaries still has those tabs (they say so), so a
#: link's tab always exists.
CLASSIFY_TABS = (*CLASSIFY_PANELS, EARLIER, LATENTS)
#: The unit's parameter in Neuron Explorer links; ``neuron``, its name in older links, is still read.
UNIT_PARAM, OLD_UNIT_PARAM = "unit", "neuron"


def _query_text(value: object) -> str:
    return value.slug if isinstance(value, Tab) else str(value)


def href(page: str, **params: object) -> str:
    """A relative link to ``page`` with query ``params`` (for markdown links and tables; a ``Tab`` by its slug)."""
    query = urlencode({k: _query_text(v) for k, v in params.items() if v is not None})
    return f"./{URL_PATHS[page]}" + (f"?{query}" if query else "")


def go_to(page: str, **params: object) -> None:
    """Switch to ``page`` now, carrying ``params`` into its URL (a ``Tab`` by its slug)."""
    st.switch_page(page, query_params={k: _query_text(v) for k, v in params.items() if v is not None})


def on_input_link(input_params: dict) -> dict:
    """Neuron Explorer parameters that show a unit on the input named by ``input_params``
    (``test_index``/``train_index``) on its "On one input" tab; nothing for an input without an index
    (a drawing), where the unit shows its own top example."""
    return {**input_params, NEURON_VIEW_PARAM: ON_INPUT} if input_params else {}


def neuron_href(model: str, layer: str, neuron: int, pos: tuple[int, int] | None = None,
                test_index: int | None = None, train_index: int | None = None, view: Tab | None = None,
                basis: str | None = None) -> str:
    """A unit of ``layer``: a neuron or channel, or with ``basis="dictionary:ID"`` a latent of that dictionary;
    ``view``: the tab to open."""
    return href(NEURON_PAGE, model=model, layer=layer, unit=neuron, pos=None if pos is None else f"{pos[0]},{pos[1]}",
                test_index=test_index, train_index=train_index, view=view,
                basis=None if basis in (None, "neurons") else basis)


def dictionaries_href(model: str, layer: str | None = None, sae: str | None = None) -> str:
    return href(DICTIONARIES_PAGE, model=model, layer=layer, sae=sae)


def classify_href(model: str, test_index: int | None = None, train_index: int | None = None) -> str:
    return href(CLASSIFY_PAGE, model=model, test_index=test_index, train_index=train_index)


def ablations_href(model: str, **params: object) -> str:
    return href(ABLATIONS_PAGE, model=model, **params)


def hypothesis_href(model: str, **params: object) -> str:
    return href(HYPOTHESIS_PAGE, model=model, **params)


def geometry_href(model: str, **params: object) -> str:
    return href(GEOMETRY_PAGE, model=model, **params)


def features_href(model: str, **params: object) -> str:
    return href(FEATURES_PAGE, model=model, **params)
