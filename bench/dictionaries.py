"""Dictionaries: training time and quality of the bundled mlp-1x64 one, and what challenge-cnn's says about 1 vs anti-1.

In a fresh subprocess whose analysis cache is an empty temporary folder:

1. Train the bundled recipe (512 TopK latents, k=16, seed 0, 4,000 steps of 512
   rows) on ``mlp-1x64``'s hidden layer from a cold cache, measure it on the
   test set, and say whether it reproduced the bundled dictionary's tensors.
   Targets: under 60 s of training, variance explained >= 0.9, spliced
   accuracy within 1 point of the model's, at most 10% dead latents.
2. On ``challenge-cnn``'s ``fc1``, with the walkthrough's band (template
   train:6, centre 0.5, fitted to the model's predictions): do the bundled
   dictionary's latents separate the "1" detectors (images above the band,
   the most like the clue "1") and the "anti-1" detectors (below it) more
   cleanly than the neurons? Three numbers for each basis: the *cross-talk*
   (of the firing mass the two detector groups, ``derive_unit_groups``, put
   on the two outer regions, the share on the other group's region), how
   many live units are at least 95% *pure* (firing mass in one of the three
   regions), and how many units carry 90% of the |logit 1 - logit 0|
   attribution on a test image (mean, per region), the error term's share
   of that attribution beside it.

The machine is shared: the load average (``/proc/loadavg``) before and after
is reported with the times. Run: ``python -m bench.dictionaries``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .common import save

TARGETS = {"fit_seconds": 60, "variance_explained": 0.9, "accuracy_drop": 0.01, "dead_fraction": 0.1}

_RUN = """
import json, time
import numpy as np, torch
import mechmnistic as mm
from mechmnistic.analysis import walkthrough as w
from mechmnistic.analysis.activations import layer_activations
from mechmnistic.analysis.hypothesis import image_scores
from mechmnistic.analysis.latents import latent_activations, units_needed
from mechmnistic.analysis.splicing import latent_logit_weights
from mechmnistic.analysis.templates import resolve_template
from mechmnistic.dictionaries import SparseAutoencoder, load_dictionary, train_dictionary

result = {}
model = mm.load_model("mlp-1x64")
mm.load_mnist("train"); mm.load_mnist("test")
start = time.perf_counter()
trained = train_dictionary(model, "layers.0", SparseAutoencoder(n_latents=512, k=16, random_state=0))
bundled = load_dictionary(model, "layers.0-topk512")
result["mlp"] = {"wall_seconds": round(time.perf_counter() - start, 2),
                 "fit_seconds": trained.card.training["fit_seconds"],
                 "read_seconds": trained.card.training["read_seconds"], "metrics": trained.card.metrics,
                 "bundled_metrics": bundled.card.metrics,
                 "reproduces_bundled_tensors": all(torch.equal(getattr(trained, n), getattr(bundled, n))
                                                   for n in ("W_enc", "b_enc", "W_dec", "b_dec"))}

start = time.perf_counter()
model = mm.load_model(w.MODEL)
dictionary = load_dictionary(model, w.DICTIONARY)
train, test = mm.load_mnist("train"), mm.load_mnist("test")
template = resolve_template(w.TEMPLATE).image
band = w.fit_band(model, image_scores(train.images, template, w.CENTER), image_scores(test.images, template, w.CENTER))
# The walkthrough's own numbers (what its step 7 shows), then the breakdowns only a benchmark reports.
neurons, latents = w.detector_separation(model, band)
rule = band.rule
test_regions = rule.regions(band.test.scores)
weight = model.layer("fc2").weight.detach().double().numpy()
direction = weight[1] - weight[0]
test_neurons = layer_activations(model, w.LAYER, "test").values.astype(np.float64)
attributions = {"neurons": test_neurons * direction,
                "latents": latent_activations(model, dictionary, "test").values.astype(np.float64)
                * (latent_logit_weights(model, dictionary) @ np.array([-1.0, 1.0]))}
separation = {"band": [rule.low, rule.high], "regions": list(rule.region_names)}
for split in (neurons, latents):
    needed = units_needed(attributions[split.basis], 0.9)
    separation[split.basis] = {
        "alive": split.alive, "of": split.units, "groups": {"below": split.below, "above": split.above},
        "cross_talk": split.cross_talk, "pure_95": split.pure,
        "units_for_90pct_attribution_mean": split.units_for_90,
        "units_for_90pct_attribution_median": float(np.median(needed)),
        "units_for_90pct_attribution_by_region": {r: float(needed[test_regions == i].mean())
                                                  for i, r in enumerate(rule.region_names)}}
rows = torch.from_numpy(test_neurons.astype(np.float32))
error = test_neurons - dictionary.decode(dictionary.encode(rows)).double().numpy()
separation["latents"]["error_share_of_attribution"] = float(
    np.abs(error @ direction).sum() / np.abs(attributions["latents"]).sum())
separation["seconds"] = round(time.perf_counter() - start, 2)
result["challenge_fc1"] = separation
print(json.dumps(result))
"""


def _load() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def main() -> None:
    load_before = _load()
    with tempfile.TemporaryDirectory(prefix="mechmnistic-bench-cache-") as cache:
        env = {**os.environ, "MECHMNISTIC_CACHE": cache}
        out = subprocess.run([sys.executable, "-c", _RUN], capture_output=True, text=True, check=True, env=env)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["load_average_before"], result["load_average_after"] = load_before, _load()
    metrics = result["mlp"]["metrics"]
    result["targets"] = TARGETS
    result["within_targets"] = (result["mlp"]["fit_seconds"] < TARGETS["fit_seconds"]
                                and metrics["variance_explained"] >= TARGETS["variance_explained"]
                                and metrics["spliced_accuracy"] >= metrics["model_accuracy"] - TARGETS["accuracy_drop"]
                                and metrics["dead_fraction"] <= TARGETS["dead_fraction"])
    save("dictionaries", result)


if __name__ == "__main__":
    main()
