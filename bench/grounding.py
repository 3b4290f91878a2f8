"""Grounding benchmark: grounded (Hadamard) embeddings of the top 500 training examples of every unit.

For each model, every unit of every layer (conv channels at their maximum,
logits included) gets its 500 most activating training images, and each
(image, unit) pair is grounded exactly in pixel space (``w_eff``, ``b_eff``)
and embedded (``x ⊙ w_eff``). The dataset activations that pick the top
examples are timed apart: they are computed once per model and cached on disk.
Each model runs in a fresh subprocess, once with one torch thread and once
with two (the machine's cores): on a busy machine the two-thread run suffers
most. Run: `python -m bench.grounding`.
"""

from __future__ import annotations

import json
import subprocess
import sys

from .common import save

MODELS = ["mlp-2x64", "challenge-cnn"]
TOP = 500

_RUN = """
import json, sys, time
import numpy as np
import torch
from bench.common import peak_rss_mb
from mechmnistic import load_mnist, load_model
from mechmnistic.analysis.activations import layer_activations
from mechmnistic.analysis.grounding import effective_weights_pairs

model, top = load_model(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(int(sys.argv[3]))
images = load_mnist("train").images
t = time.perf_counter()
activations = {layer: layer_activations(model, layer, "train") for layer in model.layer_names}
activations_s = time.perf_counter() - t

per_layer, worst, pairs, seconds, cpu = {}, 0.0, 0, 0.0, 0.0
for layer, acts in activations.items():
    t, c = time.perf_counter(), time.process_time()
    best = np.argpartition(-acts.values, top - 1, axis=0)[:top]   # [top, units], any order
    index = best.T.ravel()                                         # unit-major pairs
    units = np.repeat(np.arange(acts.n_units), top)
    grounding = effective_weights_pairs(model, layer, images, units, image_index=index)
    embeddings = grounding.embeddings(images)                      # [pairs, 28, 28]
    took = time.perf_counter() - t
    cpu += time.process_time() - c
    per_layer[layer] = {"pairs": len(units), "seconds": round(took, 3)}
    pairs += len(units)
    seconds += took
    sums = embeddings.sum(axis=(1, 2), dtype=np.float64) + grounding.b_eff
    worst = max(worst, float(np.abs(sums - grounding.pre).max()))
print(json.dumps({"seconds_grounded_embeddings": round(seconds, 3), "cpu_seconds": round(cpu, 3),
                  "pairs": pairs, "per_layer": per_layer,
                  "seconds_dataset_activations": round(activations_s, 3),
                  "max_identity_error": worst, "peak_rss_mb": round(peak_rss_mb())}))
"""


THREADS = [1, 2]


def _run(model: str, threads: int) -> dict:
    command = [sys.executable, "-c", _RUN, model, str(TOP), str(threads)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    runs = {name: {f"threads_{t}": _run(name, t) for t in THREADS} for name in MODELS}
    save("grounding", {f"top{TOP}_every_unit": runs})


if __name__ == "__main__":
    main()
