"""The guided walkthrough's whole computation on challenge-cnn, from a cold cache: wall seconds and peak memory.

What the Walkthrough page computes, in a fresh subprocess whose analysis cache
is an empty temporary folder: the dataset activations (fc1 and the logits over
train and test), the PCA of fc1, feature visualisation of all 200 fc1 units
(100 Adam steps, one batch) and of the logit-difference direction with their
nearest training images, the band fitted to the model's predictions, a
minimum-ablation of both detector groups over the test set, and the 5-point
causal-scrubbing sweep with its random baseline. Targets: under 60 s and under
1 GB peak resident memory (the write-up's notebook needed about 13 GB); the
peak after each step shows which one raised it (importing torch and loading
MNIST come first). Run: `python -m bench.walkthrough`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from .common import save

TARGET_SECONDS = 60
TARGET_PEAK_MB = 1024

_RUN = """
import json, time
import torch
from bench.common import peak_rss_mb
import mechmnistic as mm
from mechmnistic.analysis import feature_viz as fv, geometry as g, walkthrough as w
from mechmnistic.analysis.ablation import ablate
from mechmnistic.analysis.hypothesis import image_scores
from mechmnistic.analysis.predictions import split_logits
from mechmnistic.analysis.templates import resolve_template

torch.set_num_threads(2)
steps, peaks, start = {}, {}, time.perf_counter()
def step(name, since=[start]):
    now = time.perf_counter(); steps[name] = round(now - since[0], 3); since[0] = now
    peaks[name] = round(peak_rss_mb())  # peak so far: shows which step raised it
model = mm.load_model(w.MODEL)
train, test = mm.load_mnist("train"), mm.load_mnist("test")
step("load_model_and_mnist")
for split in ("train", "test"):
    split_logits(model, split)
step("activations_logits_train_test")
fit = g.layer_pca(model, w.LAYER)
logit = g.build_direction(model, fit, w.LOGIT_DIRECTION)
step("pca_fc1_and_logit_direction")
units = fv.visualize_units(model, w.LAYER, config=w.FEATURE_CONFIG)
direction = fv.visualize(model, fv.direction_objectives(fit.space, [logit]), w.FEATURE_CONFIG)
step("feature_viz_200_units_and_direction_100_steps")
high, low = w.arm_units(fit)
fv.nearest_training_examples(units.subset([*high, *low]).images, 2)
fv.nearest_training_examples(direction.images, 2)
step("nearest_training_examples")
template = resolve_template(w.TEMPLATE).image
band = w.fit_band(model, image_scores(train.images, template, w.CENTER), image_scores(test.images, template, w.CENTER))
step("scores_and_band_fit")
sweep = w.scrub_band(model, band)
step("unit_groups_and_scrub_sweep_5_tolerances_60k")
ablated = ablate(model, w.LAYER, "below,above", "min", groups=sweep.groups)
step("min_ablation_both_detector_groups_test")
total = round(time.perf_counter() - start, 3)
print(json.dumps({"wall_seconds": total, "peak_rss_mb": round(peak_rss_mb()), "steps": steps,
                  "peak_rss_mb_after": peaks,
                  "fitted_band": [band.rule.low, band.rule.high], "agreement_test": band.test.agreement,
                  "preserved": sweep.preserved.tolist(), "random_baseline": sweep.random_baseline,
                  "ablation_changed": float(ablated.changed.mean())}))
"""


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mechmnistic-bench-cache-") as cache:
        env = {**os.environ, "MECHMNISTIC_CACHE": cache}
        out = subprocess.run([sys.executable, "-c", _RUN], capture_output=True, text=True, check=True, env=env)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["targets"] = {"wall_seconds": TARGET_SECONDS, "peak_rss_mb": TARGET_PEAK_MB}
    result["within_targets"] = result["wall_seconds"] < TARGET_SECONDS and result["peak_rss_mb"] < TARGET_PEAK_MB
    save("walkthrough", result)


if __name__ == "__main__":
    main()
