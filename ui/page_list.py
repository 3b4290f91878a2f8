"""The app's pages, in the sidebar's order: ``app.py`` builds its navigation from this list, and the tests
read it to hold every page to their checks (so a page added here without tests fails them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageEntry:
    script: str  #: the page's script, ``app_pages/<script>.py``
    title: str
    icon: str  #: a Material Symbols name (Streamlit bundles the font, so it shows without an emoji font)
    url_path: str | None = None  #: ``None`` for the default page, served at ``/``

    @property
    def path(self) -> str:
        return f"app_pages/{self.script}.py"


PAGES = (
    PageEntry("zoo", "Model zoo", "inventory_2"),
    PageEntry("neuron_explorer", "Neuron Explorer", "neurology", "neuron"),
    PageEntry("classification_explorer", "Classification Explorer", "target", "classify"),
    PageEntry("import_model", "Import a model", "upload_file", "import"),
    PageEntry("ablations", "Attribution & ablations", "content_cut", "ablations"),
    PageEntry("hypothesis", "Hypothesis & causal scrubbing", "science", "hypothesis"),
    PageEntry("geometry", "Activation geometry", "scatter_plot", "geometry"),
    PageEntry("feature_viz", "Feature visualisation", "palette", "features"),
    PageEntry("dictionaries", "Dictionaries", "dictionary", "dictionaries"),
    PageEntry("walkthrough", "Walkthrough: the challenge", "explore", "walkthrough"),
)
