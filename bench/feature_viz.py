"""Feature visualisation benchmark: every fc1 unit of challenge-cnn, 100 Adam steps each.

Measures, in the same process and run, MechMNISTic's batched optimisation (all
200 units as one batch of 200 images) against the EIS VII write-up's approach:
one unit at a time, each with its own image and Adam optimiser, the whole
network run with a hook capturing fc1, as a notebook writes it (the model as
loaded, PyTorch's default kernels). The loop is also timed at its best
(parameter gradients switched off), so the speed-up is not flattered. Each is
measured on one torch thread and on the default number (wall and CPU seconds). All
start from zeros with the same learning rate and clamp to [0, 1]; the report
also compares the objectives they reach. Run: `python -m bench.feature_viz`.
"""

from __future__ import annotations

import os
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


def _measure(model: torch.nn.Module, threads: int) -> dict:
    """Batched and looped runs on ``threads`` torch threads: wall and CPU seconds, and what they reached."""
    torch.set_num_threads(threads)
    objectives = unit_objectives(model, LAYER)
    units = range(len(objectives))
    optimize_inputs(model, objectives.subset([0]), FeatureVizConfig(steps=2))  # warm up the kernels
    one_unit_at_a_time(model, LAYER, range(1), 2, LR)
    times = {}

    def timed(name, work):
        wall, cpu = time.perf_counter(), time.process_time()
        out = work()
        times[name] = {"wall_s": round(time.perf_counter() - wall, 3), "cpu_s": round(time.process_time() - cpu, 3)}
        return out

    batched = timed("batched", lambda: optimize_inputs(model, objectives, FeatureVizConfig(steps=STEPS, lr=LR)))
    for param in model.parameters():
        param.requires_grad_(True)  # as loaded, as a notebook runs it
    looped = timed("one_unit_at_a_time", lambda: one_unit_at_a_time(model, LAYER, units, STEPS, LR))
    for param in model.parameters():
        param.requires_grad_(False)
    timed("one_unit_at_a_time_without_parameter_gradients",
          lambda: one_unit_at_a_time(model, LAYER, units, STEPS, LR))

    # Both follow the same mathematics; float32 rounding differs between a batch of 200 and of 1, and
    # Adam amplifies it where a ReLU or max-pool sits at a tie, so compare what was reached.
    _, cache = run_with_cache(model, looped, names=[f"{LAYER}.pre"])
    loop_objective = cache[f"{LAYER}.pre"].numpy()[np.arange(len(looped)), np.arange(len(looped))]
    batched_s = times["batched"]["wall_s"]
    speedup = times["one_unit_at_a_time"]["wall_s"] / batched_s
    return {
        **times,
        "speedup": round(speedup, 1),
        "speedup_over_the_loop_without_parameter_gradients": round(
            times["one_unit_at_a_time_without_parameter_gradients"]["wall_s"] / batched_s, 1),
        "targets": {"batched_under_2s": batched_s < 2.0, "at_least_10x": speedup >= 10},
        "objective_raised_for_units": int((batched.final > batched.initial).sum()),
        "mean_final_objective": {"batched": float(batched.final.mean()), "loop": float(loop_objective.mean())},
    }


def main() -> None:
    model = load_model(MODEL).eval()
    default_threads = torch.get_num_threads()
    runs = {f"{threads}_threads": _measure(model, threads) for threads in sorted({1, default_threads})}
    torch.set_num_threads(default_threads)
    save("feature_viz", {"model": MODEL, "layer": LAYER, "units": 200, "steps": STEPS,
                         "load_average": list(os.getloadavg()), **runs, "peak_rss_mb": round(peak_rss_mb())})


if __name__ == "__main__":
    main()
