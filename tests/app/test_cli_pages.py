"""The command line gives the numbers the pages' download buttons give, on an MLP and a CNN.

``neuron`` against the Neuron Explorer's downloads (top examples, clusters,
input and output weights) and summary; ``attribute``, ``ablate`` and
``patch`` against the Attribution & ablations page's three downloads and its
patching table. Each page is opened once per model and setting (a
module-scoped fixture), and each download is read as the browser would get
it: the bytes the button serves, deferred ones made by their callable.
tests/test_cli_units.py and tests/test_cli_interventions.py check the same
commands against the Python API.
"""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import pytest
import streamlit.testing.v1.app_test as app_test_module
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from ui.links import CLUSTERS, NEURON_VIEW_PARAM, READS, TOP_EXAMPLES

from ..cli_runner import cli
from ..test_cli_units import cli_json
from . import tabs
from .conftest import open_app_page

NEURON_PAGE = "app_pages/neuron_explorer.py"
ABLATIONS_PAGE = "app_pages/ablations.py"


@pytest.fixture(scope="module")
def media():
    """The media file managers of the AppTest runs, newest last: where a download button's bytes are kept."""
    made: list[MediaFileManager] = []

    class Recording(MediaFileManager):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(app_test_module, "MediaFileManager", Recording)
        yield made


def download(at: AppTest, media: list[MediaFileManager], key: str) -> bytes:
    """What the download button ``key`` of the last run serves (a deferred one runs its callable, as a click does)."""
    proto = next(button.proto for button in at.get("download_button") if button.key == key)
    manager = media[-1]
    url = manager.execute_deferred(proto.deferred_file_id) if proto.HasField("deferred_file_id") else proto.url
    return manager.read_file(url.rsplit("/", 1)[1]).content


def csv(at: AppTest, media, key: str) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(download(at, media, key)))


# -- the Neuron Explorer -----------------------------------------------------------------------------

NEURONS = {
    "mlp-layers.0": ("mlp-1x64", "layers.0", 5, 500),
    "cnn-conv2": ("cnn-digits", "conv2", 3, 60),
    "cnn-fc1": ("cnn-digits", "fc1", 7, 60),
}


@pytest.fixture(scope="module")
def neuron_page(media):
    """Per case of ``NEURONS``: the page's downloads and summary metrics, one session going through three tabs."""
    seen: dict[str, dict] = {}

    def get(case: str) -> dict:
        if case not in seen:
            name, layer, unit, top_k = NEURONS[case]
            at = AppTest.from_file("../../app.py", default_timeout=300).run()  # as test_neuron_page opens it
            at.switch_page(NEURON_PAGE)
            at.query_params.update(model=name, layer=layer, unit=str(unit), top_k=str(top_k),
                                   **{NEURON_VIEW_PARAM: TOP_EXAMPLES.slug})
            at.run()
            assert not at.exception and not at.warning, [e.value for e in at.exception]
            found = {"top": csv(at, media, "nx_dl_top"), "metrics": {m.label: m.value for m in at.metric}}
            tabs.open_tab(at, NEURON_VIEW_PARAM, CLUSTERS, READS)
            found["clusters"] = csv(at, media, "nx_dl_clusters")
            tabs.open_tab(at, NEURON_VIEW_PARAM, READS, READS)
            found["in"], found["out"] = csv(at, media, "nx_dl_in"), csv(at, media, "nx_dl_out")
            seen[case] = found
        return seen[case]

    return get


def neuron_json(case: str) -> dict:
    name, layer, unit, top_k = NEURONS[case]
    return cli_json("neuron", name, "--layer", layer, "--unit", str(unit), "--top", str(top_k))


@pytest.mark.parametrize("case", NEURONS)
def test_neuron_top_examples_are_the_pages_download(neuron_page, case):
    page, result = neuron_page(case)["top"], neuron_json(case)
    shown = result["top_examples"]
    assert list(page.columns) == list(shown), "same columns, same order"
    assert len(page) == NEURONS[case][3]
    for column in page.columns:
        if column in ("pre_activation", "activation"):  # float32, written and read back as text
            np.testing.assert_array_equal(page[column].to_numpy(np.float32), np.float32(shown[column]), column)
        else:
            assert page[column].tolist() == shown[column], column


def _cells(labels) -> list[tuple[str, tuple[int, int]]]:
    """``"conv1 ch3 (8, 4)"`` or ``"conv1 ch3 +(2, 1)"`` -> ``("conv1 ch3", (8, 4))``."""
    found = [re.fullmatch(r"(\S+ ch\d+) \+?\((\d+), (\d+)\)", label) for label in labels]
    return [(m.group(1), (int(m.group(2)), int(m.group(3)))) for m in found]


def _digits_text(counts: list[int]) -> str:
    """The page's "digits" cell: ``"7: 111, 9: 7"``, most first."""
    return ", ".join(f"{k}: {n}" for k, n in sorted(enumerate(counts), key=lambda kv: -kv[1]) if n)


@pytest.mark.parametrize("case", NEURONS)
def test_neuron_clusters_are_the_pages_download(neuron_page, case):
    page, rows = neuron_page(case)["clusters"], neuron_json(case)["clusters"]["rows"]
    assert page["cluster"].tolist() == [row["cluster"] for row in rows]
    assert page["size"].tolist() == [row["size"] for row in rows]
    assert page["main digit"].tolist() == [row["main_digit"] for row in rows]
    assert page["digits"].tolist() == [_digits_text(row["digits"]) for row in rows]
    assert page["central train_index"].tolist() == [row["central_train_index"] for row in rows]
    # The similarities come from a float32 product of the embeddings, whose last bits depend on how many BLAS
    # threads run it: one_thread() limits them on the main thread (the command) but not on Streamlit's script
    # thread (the page), so the two agree to ~1e-10, not bit for bit.
    none_is_nan = np.vectorize(lambda v: np.nan if v is None else v, otypes=[float])
    np.testing.assert_allclose(page["similarity within"], none_is_nan([r["similarity_within"] for r in rows]),
                               rtol=1e-8)
    np.testing.assert_allclose(page["similarity to others"], none_is_nan([r["similarity_to_others"] for r in rows]),
                               rtol=1e-8)


@pytest.mark.parametrize("case", NEURONS)
def test_neuron_weights_and_summary_are_the_pages(neuron_page, case):
    found, result = neuron_page(case), neuron_json(case)
    weights, stats = result["weights"], result["statistics"]
    inputs, outputs = found["in"], found["out"]
    if "input_weight" in inputs:  # a first-layer neuron: the pixel map, row by row
        assert inputs["row"].tolist() == [r for r in range(28) for _ in range(28)]
        np.testing.assert_array_equal(inputs["input_weight"].to_numpy(np.float32),
                                      np.float32(weights["input_weights"]).ravel())
    elif NEURONS[case][1].startswith("conv"):  # a channel's kernel: the page places it where the channel peaks on
        # the input it shows, the command (no input) gives offsets; the same cells, one shift apart
        page_cells, cli_cells = _cells(inputs["source"]), _cells(weights["input_sources"])
        assert [c for c, _ in page_cells] == [c for c, _ in cli_cells]
        shifts = {(r - dr, col - dc) for (_, (r, col)), (_, (dr, dc)) in zip(page_cells, cli_cells, strict=True)}
        assert len(shifts) == 1 and all(name.split(" ")[2].startswith("+(") for name in weights["input_sources"])
        np.testing.assert_array_equal(inputs["weight"].to_numpy(np.float32),
                                      np.float32(weights["input_weights"]).ravel())
    else:  # a deeper neuron: one weight per source unit, named as on the page
        assert inputs["source"].tolist() == weights["input_sources"]
        np.testing.assert_array_equal(inputs["weight"].to_numpy(np.float32),
                                      np.float32(weights["input_weights"]).ravel())
    assert list(outputs.columns) == [f"{weights['writes']}_unit", "output_weight"]
    np.testing.assert_array_equal(outputs["output_weight"].to_numpy(np.float32), np.float32(weights["output_weights"]))
    assert found["metrics"] == {
        "Fires on": f"{stats['firing_fraction']:.1%}", "Mean activation": f"{stats['mean']:.3g}",
        "Max activation": f"{stats['max']:.3g}", "Bias": f"{weights['bias']:.3g}",
        "Feature clusters": str(result["clusters"]["count"]),
    }


# -- Attribution & ablations ---------------------------------------------------------------------------

#: Page parameters, and the same settings for the command line: attribution (None where the page's layer does
#: not feed the output), ablation, patching.
ABLATIONS = {
    "mlp-layers.0": (
        {"model": "mlp-1x64", "target_a": "3", "units": "0-9,dead", "method": "mean", "psource": "1",
         "ptarget": "0", "punits": "all"},
        ["mlp-1x64", "--layer", "layers.0", "--class", "3"],
        ["mlp-1x64", "--layer", "layers.0", "--units", "0-9,dead", "--with", "mean"],
        ["mlp-1x64", "--layer", "layers.0", "--units", "all", "--source", "test:1", "--target", "test:0"],
    ),
    "cnn-fc1": (
        {"model": "cnn-digits", "layer": "fc1", "target_a": "3", "target_b": "5", "units": "0-49", "method": "zero",
         "psource": "7", "ptarget": "4", "punits": "100-199"},
        ["cnn-digits", "--layer", "fc1", "--class", "3", "--minus", "5"],
        ["cnn-digits", "--layer", "fc1", "--units", "0-49", "--with", "zero"],
        ["cnn-digits", "--layer", "fc1", "--units", "100-199", "--source", "test:7", "--target", "test:4"],
    ),
    "cnn-conv2": (
        {"model": "cnn-digits", "layer": "conv2", "units": "3,5", "method": "resample", "aseed": "4",
         "by": "model prediction", "psource": "1", "ptarget": "0", "punits": "all"},
        None,
        ["cnn-digits", "--layer", "conv2", "--units", "3,5", "--with", "resample", "--seed", "4", "--by",
         "prediction"],
        ["cnn-digits", "--layer", "conv2", "--units", "all", "--source", "test:1", "--target", "test:0"],
    ),
}


@pytest.fixture(scope="module")
def ablations_page(media):
    """Per case of ``ABLATIONS``: the page (one run) with its downloads read."""
    seen: dict[str, tuple[AppTest, dict]] = {}

    def get(case: str) -> tuple[AppTest, dict]:
        if case not in seen:
            at = open_app_page(ABLATIONS_PAGE, **ABLATIONS[case][0])
            assert not at.exception, [e.value for e in at.exception]
            seen[case] = at, {key: csv(at, media, f"abl_download_{key}") for key in ("dla", "ablation", "patch")}
        return seen[case]

    return get


@pytest.mark.parametrize("case", ["mlp-layers.0", "cnn-fc1"])
def test_attribute_is_the_pages_download(ablations_page, case):
    _, downloads = ablations_page(case)
    page = downloads["dla"]
    result = cli_json("attribute", *ABLATIONS[case][1], "--per-image")
    names = [group["name"] for group in result["groups"]]
    assert list(page.columns) == ["test_index", *names, "bias", "total"] and names == ["dead", "alive"]
    assert page["test_index"].tolist() == list(range(10_000))
    contributions = np.asarray(result["per_image"]["contributions"])
    for g, name in enumerate(names):  # float64, written as its shortest repr: exact
        np.testing.assert_array_equal(page[name], contributions[:, g], name)
    assert (page["bias"] == result["bias"]).all()
    np.testing.assert_array_equal(page["total"], result["per_image"]["total"])


def test_attribute_and_the_page_name_the_same_layer(ablations_page):
    """On a layer that does not feed the output the page shows all of fc1's units; the command says to use fc1."""
    at, _ = ablations_page("cnn-conv2")
    assert any("Attribution is to the layer feeding the output, **fc1**" in info.value for info in at.info)
    code, out, err = cli("attribute", "cnn-digits", "--layer", "conv2", "--class", "3")
    assert code == 2 and out == ""
    assert err.strip() == ("mechmnistic attribute: error: direct logit attribution is to the units of fc1, the layer "
                           "feeding the output layer; use --layer fc1")


@pytest.mark.parametrize("case", ABLATIONS)
def test_ablate_is_the_pages_download(ablations_page, case):
    _, downloads = ablations_page(case)
    page = downloads["ablation"]
    result = cli_json("ablate", *ABLATIONS[case][2])
    rows = result["rows"]
    n_classes = len(rows[0]["mean_logit_change"])
    assert list(page.columns) == ["group", "count", "fraction_changed", "accuracy_before", "accuracy_after",
                                  *[f"mean Δ logit {c}" for c in range(n_classes)]]
    assert page["group"].tolist() == [row["group"] for row in rows]
    assert page["count"].tolist() == [row["count"] for row in rows]
    for column in ("fraction_changed", "accuracy_before", "accuracy_after"):
        np.testing.assert_array_equal(page[column], [row[column] for row in rows], column)
    np.testing.assert_array_equal(page[[f"mean Δ logit {c}" for c in range(n_classes)]],
                                  [row["mean_logit_change"] for row in rows])


@pytest.mark.parametrize("case", ABLATIONS)
def test_patch_is_the_pages_download_and_table(ablations_page, case):
    at, downloads = ablations_page(case)
    result = cli_json("patch", *ABLATIONS[case][3], "--per-image")
    page = downloads["patch"]
    patched = np.asarray(result["per_image"]["patched_logits"], dtype=np.float32)
    assert page["test_index"].tolist() == list(range(10_000))
    np.testing.assert_array_equal(page[[f"logit {c}" for c in range(patched.shape[1])]].to_numpy(np.float32), patched)
    logits = next(df.value for df in at.dataframe if "logit after" in df.value.columns)
    np.testing.assert_array_equal(logits["logit before"].to_numpy(np.float32), np.float32(result["logits"]["before"]))
    np.testing.assert_array_equal(logits["logit after"].to_numpy(np.float32), np.float32(result["logits"]["after"]))
    text = " ".join(m.value for m in at.markdown)
    assert f"Prediction **{result['prediction']['before']} → {result['prediction']['after']}**" in text
    whole = result["test_set"]
    assert f"**{whole['fraction_changed']:.1%}** of predictions change; accuracy {whole['accuracy_before']:.1%} → " \
           f"{whole['accuracy_after']:.1%}" in text
