"""Circuit-lab benchmark on challenge-cnn: hypothesis fit, unit groups, DLA, ablations, a scrubbing sweep.

Runs in a fresh subprocess with an empty analysis cache, so the first pass
includes computing the dataset activations it needs (fc1 and the logits over
train and test); a second pass in the same process shows the cached cost.
Reports seconds per step and the peak resident memory. Run:
`python -m bench.circuit`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from .common import save

_RUN = """
import json, time
import numpy as np, torch
from bench.common import peak_rss_mb
import mechmnistic as mm
from mechmnistic.analysis import ablation, attribution, hypothesis as hyp, scrubbing
from mechmnistic.analysis.activations import layer_activations
from mechmnistic.analysis.predictions import predicted_classes
from mechmnistic.analysis.templates import resolve_template

torch.set_num_threads(2)
model = mm.load_model("challenge-cnn")
train, test = mm.load_mnist("train"), mm.load_mnist("test")
passes = []
for _ in range(2):
    steps, t0 = {}, time.perf_counter()
    def step(name, since=[time.perf_counter()]):
        now = time.perf_counter(); steps[name] = round(now - since[0], 3); since[0] = now
    step("start")
    template = resolve_template("train:6")
    scores = hyp.image_scores(train.images, template.image)
    rule = hyp.BandFit().fit(scores, predicted_classes(model, "train")).rule_
    h = hyp.Hypothesis(template, rule)
    agreement = {s: hyp.check_hypothesis(model, h, s).agreement for s in ("train", "test")}
    step("hypothesis_fit_and_agreement")
    groups = hyp.derive_unit_groups(layer_activations(model, "fc1", "train").values, rule.regions(scores), rule)
    step("unit_groups")
    values = layer_activations(model, "fc1", "test").values
    dla = attribution.attribution_from_activations(model, values, groups)
    step("dla_test_set")
    for method in ablation.ABLATION_METHODS:
        for units in ("below", "above", "below,above"):
            ablation.ablate(model, "fc1", units, method, groups=groups)
    step("ablations_4_methods_x_3_sets")
    sweep = scrubbing.scrub(model, "fc1", h, groups, scrubbing.DEFAULT_TOLERANCES, seed=0)
    step("scrub_sweep_5_tolerances_60k")
    steps.pop("start")
    passes.append({"total_seconds": round(time.perf_counter() - t0, 3), "steps": steps})
print(json.dumps({"cold_cache": passes[0], "warm_cache": passes[1], "peak_rss_mb": round(peak_rss_mb()),
                  "agreement": agreement, "preserved": sweep.preserved.tolist(),
                  "random_baseline": sweep.random_baseline}))
"""


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mechmnistic-bench-cache-") as cache:
        env = {**os.environ, "MECHMNISTIC_CACHE": cache}
        out = subprocess.run([sys.executable, "-c", _RUN], capture_output=True, text=True, check=True, env=env)
    save("circuit", json.loads(out.stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    main()
