"""The PyTorch example's ``Net``, brought in and analysed end to end in the app, as a user would.

The official PyTorch MNIST example (conv1 1->32, conv2 32->64, max-pool,
fc1 9216->128, fc2) is the network people most often bring. Its conv2 maps
(64 channels of 24x24) over the 60,000 training images would be 8.8 GB as
float32, so every first analysis has to stream. This benchmark:

1. trains it briefly (``tests.user_networks``: 100 Adam steps) and saves it
   as users do: a ``torch.save`` state dict and a ``torch.onnx.export`` file;
2. times ``mechmnistic import`` on each in a fresh process (the state dict
   with ``--activation relu --pool none,max2``, what its code says: the
   importer asks for it otherwise; the ONNX file with no answers), into a
   zoo of its own;
3. serves the app on that zoo (``mechmnistic.serve``, as ``make run``), with
   an empty analysis cache, and opens in Chromium the Neuron Explorer on
   each of its layers (each the layer's first analysis, with the page's
   progress bar), then the Classification Explorer and the geometry page;
   per page, the time until it is finished (all charts drawn) and the
   server's CPU; at the end the server's peak memory (``VmHWM``).

Targets (issue: bring any MNIST network): server peak under 2 GB, the largest
layer's first analysis under 60 s. Run: ``python -m bench.imported_network``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.browser import CHROMIUM_ARGS, REPO, wait_until_finished
from mechmnistic.serve import running_app

from .common import peak_memory_mb, save, server_cpu_s

NAME = "pytorch-example"
TARGETS = {"server_peak_mb": 2048, "largest_first_analysis_s": 60}
PAGES = [  # path, text the finished page shows, charts it draws at least
    (f"/neuron?model={NAME}&layer=conv1&unit=0", "conv1 · channel 0", 1),
    (f"/neuron?model={NAME}&layer=conv2&unit=0", "conv2 · channel 0", 1),
    (f"/neuron?model={NAME}&layer=fc1&unit=0", "fc1 · neuron 0", 1),
    (f"/classify?model={NAME}&test_index=0", "test image #0", 4),
    (f"/geometry?model={NAME}&layer=fc1", "Activation geometry", 1),
]


def _files(folder: Path) -> dict[str, Path]:
    sys.path.insert(0, str(REPO))
    from tests.user_networks import BY_NAME, onnx_bytes, state_dict_bytes

    module = BY_NAME["official-example"].trained()
    paths = {"state dict": folder / "net.pt", "onnx": folder / "net.onnx"}
    paths["state dict"].write_bytes(state_dict_bytes(module))
    paths["onnx"].write_bytes(onnx_bytes(module))
    return paths


def _import(path: Path, zoo: Path, name: str, *answers: str) -> float:
    command = [sys.executable, "-m", "mechmnistic", "import", str(path), "--name", name, "--normalization", "none",
               "--zoo", str(zoo), *answers]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=REPO)
    return round(time.perf_counter() - start, 2)


def main() -> None:
    from playwright.sync_api import sync_playwright

    result: dict = {"targets": TARGETS}
    with tempfile.TemporaryDirectory(prefix="bench-imported-") as tmp:
        folder = Path(tmp)
        zoo, cache = folder / "zoo", folder / "cache"
        paths = _files(folder)
        result["import_s"] = {
            "state dict (--activation relu --pool none,max2)": _import(
                paths["state dict"], zoo, f"{NAME}-from-state-dict", "--activation", "relu", "--pool", "none,max2"),
            "onnx": _import(paths["onnx"], zoo, NAME),
        }
        env = {"MECHMNISTIC_MODELS": str(zoo), "MECHMNISTIC_CACHE": str(cache)}
        pages = {}
        with running_app(env) as (base, pid), sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            for path, text, charts in PAGES:
                page = context.new_page()
                cpu, start = server_cpu_s(pid), time.perf_counter()
                page.goto(base + path)
                _finished(page, text, charts)
                pages[path] = {"first_visit_s": round(time.perf_counter() - start, 2),
                               "server_cpu_s": round(server_cpu_s(pid) - cpu, 2)}
                page.close()
            result["server_peak_mb"] = round(peak_memory_mb(pid), 1)
            browser.close()
        result["pages"] = pages
        neuron_pages = [v["first_visit_s"] for k, v in pages.items() if k.startswith("/neuron")]
        result["largest_first_analysis_s"] = max(neuron_pages)
    result["load_average"] = os.getloadavg()
    save("imported_network", result)


def _finished(page, text: str, charts: int) -> None:
    # A first analysis takes a while: wait up to five minutes (the common helper waits two).
    deadline = time.time() + 300
    while True:
        try:
            wait_until_finished(page, text, charts)
            return
        except Exception:
            if time.time() > deadline:
                raise


if __name__ == "__main__":
    main()
