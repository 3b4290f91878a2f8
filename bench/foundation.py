"""Foundation benchmark: loading MNIST, run_with_cache over all 70,000 images, drawing pipeline.

Each measurement runs in a fresh subprocess so that peak memory and load times
are its own. Run: `python -m bench.foundation`.
"""

from __future__ import annotations

import json
import subprocess
import sys

from .common import save

MODELS = ["mlp-1x64", "mlp-2x64", "cnn-digits", "challenge-cnn"]

_LOAD = """
import json, time
from bench.common import peak_rss_mb
t = time.perf_counter()
from mechmnistic.data import load_mnist
train = load_mnist("train"); test = load_mnist("test")
print(json.dumps({"seconds": round(time.perf_counter() - t, 3), "peak_rss_mb": round(peak_rss_mb())}))
"""

_CACHE = """
import json, sys, time, numpy as np, torch
from bench.common import peak_rss_mb
from mechmnistic import load_mnist, load_model, run_with_cache
torch.set_num_threads(2)
model = load_model(sys.argv[1])
images = np.concatenate([load_mnist("train").images, load_mnist("test").images])
base = peak_rss_mb()
t = time.perf_counter()
logits, cache = run_with_cache(model, images)
seconds = time.perf_counter() - t
held = sum(v.numel() * v.element_size() for v in cache.values()) / 2**20
print(json.dumps({"seconds_all_hooks": round(seconds, 3), "cache_mb": round(held),
                  "peak_rss_mb": round(peak_rss_mb()), "images": len(images)}))
"""

_DRAW = """
import json
from mechmnistic import load_model
from mechmnistic.canvas_sim import drawing_pipeline_accuracy
print(json.dumps(drawing_pipeline_accuracy(load_model("mlp-1x64"), n=3000, seed=0)))
"""


def _run(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    result = {"load_mnist_train_and_test": _run(_LOAD)}
    result["run_with_cache_70k"] = {name: _run(_CACHE, name) for name in MODELS}
    result["drawing_pipeline_mlp_1x64"] = _run(_DRAW)
    save("foundation", result)


if __name__ == "__main__":
    main()
