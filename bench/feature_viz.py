"""Feature visualisation benchmark: every fc1 unit of challenge-cnn, 100 Adam steps each.

Measures, in the same process and run, MechMNISTic's batched optimisation (all
200 units as one batch of 200 images) against the EIS VII write-up's approach:
one unit at a time, each with its own image and Adam optimiser, the whole
network run with a hook capturing fc1, as a notebook writes it (the model as
loaded, PyTorch's default kernels). The loop is also timed at its best
(parameter gradients switched off), so the speed-up is not flattered. All
start from zeros with the same learning rate and clamp to [0, 1]; the report
also compares the objectives they reach. Run: `python -m bench.feature_viz`.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from mechmnistic import hooks, load_model, run_with_cache
from mechmnistic.analysis.feature_viz import FeatureVizConfig, optimize_inputs, unit_objectives

from .common import peak_rss_mb, save

MODEL, LAYER, STEPS, LR = "challenge-cnn", "fc1", 100, 0.05


def one_unit_at_a_time(model: torch.nn.Module, layer: str, units: range, steps: int, lr: float) -> np.ndarray:
    """The write-up's loop: a fresh image and optimiser per unit. Returns the images ``[U, 28, 28]``."""
    captured: dict[str, torch.Tensor] = {}
    results = []
    with hooks(model, {f"{layer}.pre": lambda out: captured.__setitem__("act", out)}):
        for unit in units:
            image = torch.zeros(1, 28, 28, requires_grad=True)
            optimizer = torch.optim.Adam([image], lr=lr)
            for _ in range(steps):
                optimizer.zero_grad()
                model(image)
                (-captured["act"][0, unit]).backward()
                optimizer.step()
                with torch.no_grad():
                    image.clamp_(0.0, 1.0)
            results.append(image.detach()[0].numpy().copy())
    return np.stack(results)


def main() -> None:
    model = load_model(MODEL).eval()
    objectives = unit_objectives(model, LAYER)
    config = FeatureVizConfig(steps=STEPS, lr=LR)
    optimize_inputs(model, objectives.subset([0]), FeatureVizConfig(steps=2))  # warm up the kernels
    one_unit_at_a_time(model, LAYER, range(1), 2, LR)

    start = time.perf_counter()
    batched = optimize_inputs(model, objectives, config)
    batched_s = time.perf_counter() - start

    start = time.perf_counter()
    looped = one_unit_at_a_time(model, LAYER, range(len(objectives)), STEPS, LR)
    loop_s = time.perf_counter() - start

    for param in model.parameters():
        param.requires_grad_(False)
    start = time.perf_counter()
    one_unit_at_a_time(model, LAYER, range(len(objectives)), STEPS, LR)
    best_loop_s = time.perf_counter() - start

    # Both follow the same mathematics; float32 rounding differs between a batch of 200 and of 1, and
    # Adam amplifies it where a ReLU or max-pool sits at a tie, so compare what was reached.
    _, cache = run_with_cache(model, looped, names=[f"{LAYER}.pre"])
    loop_objective = cache[f"{LAYER}.pre"].numpy()[np.arange(len(looped)), np.arange(len(looped))]
    save("feature_viz", {
        "model": MODEL, "layer": LAYER, "units": len(objectives), "steps": STEPS,
        "torch_threads": torch.get_num_threads(),
        "batched_seconds": round(batched_s, 3),
        "one_unit_at_a_time_seconds": round(loop_s, 3),
        "one_unit_at_a_time_without_parameter_gradients_seconds": round(best_loop_s, 3),
        "speedup": round(loop_s / batched_s, 1),
        "speedup_over_the_loop_at_its_best": round(best_loop_s / batched_s, 1),
        "targets": {"batched_under_2s": batched_s < 2.0, "at_least_10x": loop_s / batched_s >= 10},
        "objective_raised_for_units": int((batched.final > batched.initial).sum()),
        "mean_final_objective": {"batched": float(batched.final.mean()), "loop": float(loop_objective.mean())},
        "units_whose_objectives_agree_within_1pct": int(
            (np.abs(batched.final - loop_objective) <= 0.01 * np.abs(loop_objective) + 1e-3).sum()),
        "peak_rss_mb": round(peak_rss_mb()),
    })


if __name__ == "__main__":
    main()
