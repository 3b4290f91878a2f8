"""Hostile command-line arguments, for every subcommand: exit status 2, one clear line, nothing written.

Bad model names (unknown, path-like), out-of-range indices and classes,
non-numeric and non-finite numbers, a band with lo > hi, a template index out
of range. Each row names the line the user reads on stderr. The CLI runs
in-process (``mechmnistic.cli.main``, what the console script calls), so an
uncaught exception fails the row the way a traceback would fail the user;
``test_a_bad_argument_through_the_real_entry_point`` runs a few rows as a
subprocess to prove the entry point behaves the same.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from ..cli_runner import cli
from .disk import changes, snapshot

SCRIPT = "<script>alert(1)</script>"
HUGE = str(10**30)
NAME_REFUSED = "is not a valid model name"
HYP = ["challenge-cnn", "--layer", "fc1", "--template", "train:6"]
SCRUB = [*HYP, "--band", "-33", "-15"]
FEATVIZ = ["mlp-1x64", "--layer", "layers.0"]
PCA = ["mlp-1x64", "--layer", "layers.0"]
TRAIN = ["--mlp", "8", "--name", "x"]
NEURON = ["mlp-1x64", "--layer", "layers.0", "--unit", "0"]
ATLAS = ["mlp-1x64", "--layer", "layers.0", "--out", "atlas.npz"]
ATTRIBUTE = ["mlp-1x64", "--layer", "layers.0", "--class", "3"]
ABLATE = ["mlp-1x64", "--layer", "layers.0", "--units", "0-9", "--with", "zero"]
PATCH = ["mlp-1x64", "--layer", "layers.0", "--units", "all", "--source", "test:1", "--target", "test:0"]
SAE = ["sae", "train", "mlp-1x64", "--layer", "layers.0", "--latents", "64", "--kind", "topk", "--k", "4"]
SWEEP = ["sae", "sweep", "mlp-1x64", "--layer", "layers.0", "--latents", "8,16", "--kind", "topk", "--k", "4"]
SAE_L1 = [*SAE[:-4], "--kind", "l1", "--l1", "1"]

ROWS = {
    # -- model names, for each command that takes one
    **{f"{command}-{label}": ([command, name, *rest], NAME_REFUSED)
       for command, rest in (("card", []), ("evaluate", []), ("explain", ["--test-index", "0"]),
                             ("hypothesis", HYP[1:] + ["--fit-band"]), ("pca", PCA[1:]), ("featviz", FEATVIZ[1:]),
                             ("neuron", NEURON[1:]), ("atlas", ATLAS[1:]), ("attribute", ATTRIBUTE[1:]),
                             ("ablate", ABLATE[1:]), ("patch", PATCH[1:]))
       for label, name in (("dotdot-passwd", "../../etc/passwd"), ("abs-passwd", "/etc/passwd"), ("dotdot", ".."),
                           ("up-from-models", "models/../.."), ("empty", ""), ("script", SCRIPT))},
    "card-unknown": (["card", "no-such-model"], "no model named 'no-such-model' in the zoo (known: mlp-1x64"),
    "evaluate-unknown": (["evaluate", "no-such-model"], "no model named 'no-such-model'"),
    # -- train
    "train-name-path": (["train", "--mlp", "8", "--name", "../../etc/passwd"], NAME_REFUSED),
    "train-name-absolute": (["train", "--mlp", "8", "--name", "/etc/passwd"], NAME_REFUSED),
    "train-recipe-path": (["train", "--recipe", "../../etc/passwd"], "unknown recipe '../../etc/passwd'"),
    "train-from-card-path": (["train", "--from-card", "../../etc/passwd"], NAME_REFUSED),
    "train-width-negative": (["train", "--mlp", "-1", "--name", "x"], "layer sizes must be positive integers"),
    "train-width-zero": (["train", "--mlp", "0", "--name", "x"], "layer sizes must be positive integers"),
    "train-width-huge": (["train", "--mlp", HUGE, "--name", "x"], "layer sizes must be at most 65536"),
    "train-width-non-numeric": (["train", "--mlp", "abc", "--name", "x"], "argument --mlp: invalid int value: 'abc'"),
    "train-channels-zero": (["train", "--cnn", "0", "--name", "x"], "sizes must be positive integers"),
    "train-fc-negative": (["train", "--cnn", "8", "--fc", "-5", "--name", "x"], "sizes must be positive integers"),
    "train-epochs-negative": (["train", *TRAIN, "--epochs", "-1"], "epochs must be in 1..1000"),
    "train-epochs-huge": (["train", *TRAIN, "--epochs", HUGE], "epochs must be in 1..1000"),
    "train-lr-nan": (["train", *TRAIN, "--lr", "nan"], "lr must be a positive number, got nan"),
    "train-lr-inf": (["train", *TRAIN, "--lr", "inf"], "lr must be a positive number, got inf"),
    "train-lr-negative": (["train", *TRAIN, "--lr", "-1"], "lr must be a positive number"),
    "train-seed-negative": (["train", *TRAIN, "--seed", "-1"], "seed must be in 0..2**63-1, got -1"),
    "train-labels-unknown": (["train", *TRAIN, "--labels", SCRIPT], "argument --labels: invalid choice"),
    # -- import (the file itself: tests/test_import_cli.py and test_hostile_uploads.py)
    "import-missing-file": (["import", "/nonexistent.safetensors", "--name", "x"], "no such file"),
    "import-not-weights": (["import", "/etc/passwd", "--name", "x"], "passwd: unsupported file type"),
    "import-name-path": (["import", "/etc/hostname", "--name", "../../x"], NAME_REFUSED),
    "import-classes": (["import", "/etc/hostname", "--name", "x", "--classes", "3"],
                       "argument --classes: invalid choice"),
    # -- hypothesis
    "hypothesis-layer-unknown": (["hypothesis", "challenge-cnn", "--layer", "../fc1", "--template", "train:6",
                                  "--fit-band"], "no layer '../fc1' in this model; its layers are conv1, conv2"),
    "hypothesis-template-out-of-range": (["hypothesis", *HYP[:-1], "train:60000", "--fit-band"],
                                         "template index 60000 is out of range for train (0..59999)"),
    "hypothesis-template-huge": (["hypothesis", *HYP[:-1], f"train:{HUGE}", "--fit-band"],
                                 "is not 'train:N', 'test:N' or 'unit:LAYER:N'"),
    "hypothesis-template-negative": (["hypothesis", *HYP[:-1], "test:-1", "--fit-band"],
                                     "is not 'train:N', 'test:N' or 'unit:LAYER:N'"),
    "hypothesis-template-script": (["hypothesis", *HYP[:-1], SCRIPT, "--fit-band"],
                                   "is not 'train:N', 'test:N' or 'unit:LAYER:N'"),
    "hypothesis-template-unit-out-of-range": (["hypothesis", *HYP[:-1], "unit:fc1:200", "--fit-band"],
                                              "unit 200 is out of range for fc1 (0..199)"),
    "hypothesis-band-lo-above-hi": (["hypothesis", *HYP, "--band", "5", "1"],
                                    "band low (5) is above band high (1); swap them"),
    "hypothesis-band-nan": (["hypothesis", *HYP, "--band", "nan", "1"], "band low must be a finite number, got nan"),
    "hypothesis-band-non-numeric": (["hypothesis", *HYP, "--band", "abc", "1"], "argument --band: invalid float"),
    "hypothesis-threshold-inf": (["hypothesis", *HYP, "--threshold", "inf"], "threshold must be a finite number"),
    "hypothesis-center-non-numeric": (["hypothesis", *HYP, "--fit-band", "--center", "abc"],
                                      "argument --center: invalid float value: 'abc'"),
    "hypothesis-labels-equal": (["hypothesis", *HYP, "--band", "-33", "-15", "--labels", "0", "0"],
                                "both sides of the rule predict class 0"),
    "hypothesis-labels-no-such-class": (["hypothesis", *HYP, "--band", "-33", "-15", "--labels", "5", "0"],
                                        "--labels: class 5 does not exist; challenge-cnn has classes 0..1"),
    "hypothesis-labels-negative": (["hypothesis", *HYP, "--band", "-33", "-15", "--labels", "-1", "0"],
                                   "rule labels must be class numbers"),
    # -- scrub
    "scrub-band-lo-above-hi": (["scrub", *HYP, "--band", "5", "1", "--tolerance", "0.1"],
                               "band low (5) is above band high (1); swap them"),
    "scrub-template-out-of-range": (["scrub", *HYP[:-1], "train:60000", "--band", "-33", "-15", "--tolerance", "0.1"],
                                    "template index 60000 is out of range for train (0..59999)"),
    "scrub-tolerance-negative": (["scrub", *SCRUB, "--tolerance", "-1"], "tolerances are fractions of the score range"),
    "scrub-tolerance-nan": (["scrub", *SCRUB, "--tolerance", "nan"], "tolerances are fractions of the score range"),
    "scrub-tolerance-non-numeric": (["scrub", *SCRUB, "--tolerance", "abc"], "argument --tolerance: invalid float"),
    "scrub-seed-negative": (["scrub", *SCRUB, "--tolerance", "0.1", "--seed", "-1"],
                            "the seed must be a whole number in 0..2**63-1, got -1"),
    "scrub-split-unknown": (["scrub", *SCRUB, "--tolerance", "0.1", "--split", "../train"],
                            "argument --split: invalid choice"),
    "scrub-groups-script": (["scrub", *SCRUB, "--tolerance", "0.1", "--groups", SCRIPT],
                            "needs a ':' between the group name and its units"),
    # -- neuron
    "neuron-layer-unknown": (["neuron", "mlp-1x64", "--layer", "../layers.0", "--unit", "0"],
                             "'../layers.0' is not a hidden layer of this model; choose one of ['layers.0']"),
    "neuron-layer-output": (["neuron", "mlp-1x64", "--layer", "layers.1", "--unit", "0"],
                            "'layers.1' is not a hidden layer of this model"),
    "neuron-unit-above-range": (["neuron", *NEURON[:-1], "64"],
                                "--unit 64 is out of range: layers.0 has units 0..63"),
    "neuron-unit-negative": (["neuron", *NEURON[:-1], "-1"], "--unit -1 is out of range: layers.0 has units 0..63"),
    "neuron-unit-huge": (["neuron", *NEURON[:-1], HUGE], "is out of range: layers.0 has units 0..63"),
    "neuron-unit-non-numeric": (["neuron", *NEURON[:-1], "abc"], "argument --unit: invalid int value: 'abc'"),
    "neuron-unit-missing": (["neuron", *NEURON[:-2]], "the following arguments are required: --unit"),
    "neuron-pos-on-a-neuron": (["neuron", *NEURON, "--pos", "1,1"],
                               "layers.0 is fully connected: its units have no positions"),
    "neuron-pos-off-the-map": (["neuron", "cnn-digits", "--layer", "conv2", "--unit", "3", "--pos", "11,0"],
                               "conv2's map is 11x11: rows and columns run 0..10"),
    "neuron-pos-script": (["neuron", "cnn-digits", "--layer", "conv2", "--unit", "3", "--pos", SCRIPT],
                          "--pos must be ROW,COL (two whole numbers)"),
    "neuron-channel-above-range": (["neuron", "cnn-digits", "--layer", "conv2", "--unit", "16"],
                                   "--unit 16 is out of range: conv2 has units 0..15"),
    "neuron-top-too-few": (["neuron", *NEURON, "--top", "5"], "--top must be 10..2000, got 5"),
    "neuron-top-huge": (["neuron", *NEURON, "--top", HUGE], "--top must be 10..2000"),
    "neuron-clusters-above-range": (["neuron", *NEURON, "--clusters", "13"],
                                    "--clusters must be 'auto' or 1..12, got '13'"),
    "neuron-clusters-script": (["neuron", *NEURON, "--clusters", SCRIPT], "--clusters must be 'auto' or 1..12"),
    "neuron-explained-nan": (["neuron", *NEURON, "--explained", "nan"],
                             "--explained is a percentage from 5 to 95, got nan"),
    "neuron-explained-fraction": (["neuron", *NEURON, "--explained", "0.3"],
                                  "--explained is a percentage from 5 to 95, got 0.3"),
    # -- atlas
    "atlas-out-not-npz": (["atlas", *ATLAS[:-1], "atlas.txt"], "--out atlas.txt: the file name must end in .npz"),
    "atlas-out-no-folder": (["atlas", *ATLAS[:-1], "/nonexistent/atlas.npz"],
                            "--out /nonexistent/atlas.npz: folder /nonexistent does not exist"),
    "atlas-out-proc": (["atlas", *ATLAS[:-1], "/proc/atlas.npz"],
                       "--out /proc/atlas.npz: cannot write in folder /proc"),
    "atlas-out-missing": (["atlas", *ATLAS[:-2]], "the following arguments are required: --out"),
    "atlas-layer-unknown": (["atlas", "cnn-digits", "--layer", "fc2", "--out", "atlas.npz"],
                            "'fc2' is not a hidden layer of this model; choose one of ['conv1', 'conv2', 'fc1']"),
    "atlas-top-too-many": (["atlas", *ATLAS, "--top", "2001"], "--top must be 10..2000, got 2001"),
    "atlas-clusters-zero": (["atlas", *ATLAS, "--clusters", "0"], "--clusters must be 'auto' or 1..12, got '0'"),
    # -- attribute
    "attribute-class-above-range": (["attribute", *ATTRIBUTE[:-1], "10"], "class 10 is out of range (0..9)"),
    "attribute-class-negative": (["attribute", *ATTRIBUTE[:-1], "-1"], "class -1 is out of range (0..9)"),
    "attribute-class-non-numeric": (["attribute", *ATTRIBUTE[:-1], "abc"],
                                    "argument --class: invalid int value: 'abc'"),
    "attribute-minus-same-class": (["attribute", *ATTRIBUTE, "--minus", "3"],
                                   "a logit difference needs two different classes"),
    "attribute-minus-above-range": (["attribute", *ATTRIBUTE, "--minus", HUGE], "is out of range (0..9)"),
    "attribute-layer-not-feeding-the-output": (["attribute", "cnn-digits", "--layer", "conv2", "--class", "3"],
                                               "direct logit attribution is to the units of fc1, the layer feeding "
                                               "the output layer; use --layer fc1"),
    "attribute-groups-overlap": (["attribute", *ATTRIBUTE, "--groups", "a:0-5;b:5-9"],
                                 "unit 5 is in both 'a' and 'b'; groups must not overlap"),
    "attribute-groups-out-of-range": (["attribute", *ATTRIBUTE, "--groups", "a:0-99"],
                                      "unit 64 is out of range: this layer has units 0..63"),
    "attribute-groups-dead-then-out-of-range": (["attribute", *ATTRIBUTE, "--groups", "silent:dead,99"],
                                                "unit 99 is out of range: this layer has units 0..63"),
    "attribute-groups-script": (["attribute", *ATTRIBUTE, "--groups", SCRIPT],
                                "needs a ':' between the group name and its units"),
    "attribute-groups-empty": (["attribute", *ATTRIBUTE, "--groups", ";"], "--groups names no group"),
    "attribute-groups-named-all": (["attribute", *ATTRIBUTE, "--groups", "all:0-3"], "is not a valid group name"),
    # -- ablate
    "ablate-units-out-of-range": (["ablate", *ABLATE[:4], "70", *ABLATE[5:]],
                                  "unit 70 is out of range: this layer has units 0..63"),
    "ablate-units-dead-then-out-of-range": (["ablate", *ABLATE[:4], "dead,999", *ABLATE[5:]],
                                            "unit 999 is out of range: this layer has units 0..63"),
    "ablate-units-backwards": (["ablate", *ABLATE[:4], "9-0", *ABLATE[5:]], "range '9-0' runs backwards"),
    "ablate-units-script": (["ablate", *ABLATE[:4], SCRIPT, *ABLATE[5:]],
                            "unknown unit group '<script>alert(1)</script>'; known groups: all, dead, alive"),
    "ablate-units-empty": (["ablate", *ABLATE[:4], "", *ABLATE[5:]], "no units given"),
    "ablate-units-unknown-typed-group": (["ablate", *ABLATE[:4], "late", *ABLATE[5:], "--groups", "early:0-9"],
                                         "unknown unit group 'late'; known groups: all, dead, alive, early"),
    "ablate-method-unknown": (["ablate", *ABLATE[:-1], "dropout"], "argument --with: invalid choice: 'dropout'"),
    "ablate-method-missing": (["ablate", *ABLATE[:-2]], "the following arguments are required: --with"),
    "ablate-seed-negative": (["ablate", *ABLATE[:-1], "resample", "--seed", "-1"],
                             "the seed must be a whole number in 0..2**63-1, got -1"),
    "ablate-seed-huge": (["ablate", *ABLATE[:-1], "resample", "--seed", HUGE],
                         "the seed must be a whole number in 0..2**63-1"),
    "ablate-by-unknown": (["ablate", *ABLATE, "--by", "region"], "argument --by: invalid choice: 'region'"),
    "ablate-layer-unknown": (["ablate", "mlp-1x64", "--layer", SCRIPT, *ABLATE[3:]],
                             "'<script>alert(1)</script>' is not a hidden layer of this model"),
    "ablate-groups-no-colon": (["ablate", *ABLATE, "--groups", "x 1"], "needs a ':' between the group name"),
    # -- patch
    "patch-source-out-of-range": (["patch", *PATCH[:6], "test:10000", *PATCH[7:]],
                                  "--source: test index 10000 is out of range (0–9999)"),
    "patch-source-negative": (["patch", *PATCH[:6], "test:-1", *PATCH[7:]],
                              "--source must be test:I or train:I (an MNIST image), got 'test:-1'"),
    "patch-source-script": (["patch", *PATCH[:6], SCRIPT, *PATCH[7:]], "--source must be test:I or train:I"),
    "patch-source-file": (["patch", *PATCH[:6], "/etc/passwd", *PATCH[7:]], "--source must be test:I or train:I"),
    "patch-source-huge": (["patch", *PATCH[:6], f"test:{HUGE}", *PATCH[7:]], "--source must be test:I or train:I"),
    "patch-target-out-of-range": (["patch", *PATCH[:-1], "train:60000"],
                                  "--target: train index 60000 is out of range (0–59999)"),
    "patch-target-missing": (["patch", *PATCH[:-2]], "the following arguments are required: --target"),
    "patch-units-out-of-range": (["patch", *PATCH[:4], "64", *PATCH[5:]],
                                 "unit 64 is out of range: this layer has units 0..63"),
    "patch-layer-unknown": (["patch", "cnn-digits", "--layer", "conv9", *PATCH[3:]],
                            "'conv9' is not a hidden layer of this model"),
    # -- explain
    "explain-test-index-negative": (["explain", "mlp-1x64", "--test-index", "-1"],
                                    "test index -1 is out of range (0–9999)"),
    "explain-test-index-above-range": (["explain", "mlp-1x64", "--test-index", "10000"],
                                       "test index 10000 is out of range (0–9999)"),
    "explain-test-index-huge": (["explain", "mlp-1x64", "--test-index", HUGE], "is out of range (0–9999)"),
    "explain-test-index-non-numeric": (["explain", "mlp-1x64", "--test-index", "abc"],
                                       "argument --test-index: invalid int value: 'abc'"),
    "explain-train-index-above-range": (["explain", "mlp-1x64", "--train-index", "60000"],
                                        "train index 60000 is out of range (0–59999)"),
    "explain-class-above-range": (["explain", "mlp-1x64", "--test-index", "0", "--class", "10"],
                                  "class 10 is out of range (0–9)"),
    "explain-class-negative": (["explain", "mlp-1x64", "--test-index", "0", "--class", "-1"],
                               "class -1 is out of range (0–9)"),
    "explain-share-negative": (["explain", "mlp-1x64", "--test-index", "0", "--share", "-1"],
                               "share must be a fraction between 0 and 1"),
    "explain-share-nan": (["explain", "mlp-1x64", "--test-index", "0", "--share", "nan"],
                          "share must be a fraction between 0 and 1, got nan"),
    # -- pca
    "pca-layer-unknown": (["pca", "mlp-1x64", "--layer", SCRIPT], "no layer '<script>alert(1)</script>'"),
    "pca-components-zero": (["pca", *PCA, "--components", "0"], "n_components must be at least 1, got 0"),
    "pca-components-negative": (["pca", *PCA, "--components", "-1"], "n_components must be at least 1, got -1"),
    "pca-plane-zero": (["pca", *PCA, "--plane", "0", "1"], "--plane: components are 1..10, got 0"),
    "pca-plane-above-range": (["pca", *PCA, "--plane", "1", "99"], "--plane: components are 1..10, got 99"),
    "pca-direction-script": (["pca", *PCA, "--direction", SCRIPT], "unknown direction '<script>alert(1)</script>'"),
    "pca-direction-file-template": (["pca", *PCA, "--direction", "template:/etc/passwd.npy"],
                                    "use train:N, test:N or unit:LAYER:N"),
    "pca-top-negative": (["pca", *PCA, "--top", "-1"], "--top must be >= 0, got -1"),
    # -- featviz
    "featviz-layer-unknown": (["featviz", "mlp-1x64", "--layer", "../layers.0"], "no layer '../layers.0'"),
    "featviz-units-out-of-range": (["featviz", *FEATVIZ, "--units", "999"],
                                   "unit 999 is out of range: this layer has units 0..63"),
    "featviz-units-script": (["featviz", *FEATVIZ, "--units", SCRIPT],
                             "unknown unit group '<script>alert(1)</script>'"),
    "featviz-direction-pc-out-of-range": (["featviz", *FEATVIZ, "--direction", "pc99"], "pc99: only PC1..PC10"),
    "featviz-steps-zero": (["featviz", *FEATVIZ, "--steps", "0"], "steps must be 1..10000, got 0"),
    "featviz-steps-huge": (["featviz", *FEATVIZ, "--steps", HUGE], "steps must be 1..10000"),
    "featviz-lr-nan": (["featviz", *FEATVIZ, "--lr", "nan"], "lr must be in (0, 10], got nan"),
    "featviz-init-path": (["featviz", *FEATVIZ, "--init", "../../etc/passwd"], "init must be zeros, noise, train:N"),
    "featviz-init-out-of-range": (["featviz", *FEATVIZ, "--init", "train:60000"],
                                  "init 'train:60000': template index out of range (train 0..59999"),
    "featviz-l2-negative": (["featviz", *FEATVIZ, "--l2", "-1"], "l2 must be >= 0, got -1.0"),
    "featviz-blur-negative": (["featviz", *FEATVIZ, "--blur", "-1"], "blur must be 0..5 pixels, got -1.0"),
    "featviz-jitter-negative": (["featviz", *FEATVIZ, "--jitter", "-1"], "jitter must be 0..8 pixels, got -1"),
    "featviz-seed-negative": (["featviz", *FEATVIZ, "--seed", "-1"], "seed must be a whole number in 0..2**63-1"),
    "featviz-nearest-negative": (["featviz", *FEATVIZ, "--nearest", "-1"], "--nearest must be 1..50, got -1"),
    # -- sae (dictionaries)
    **{f"sae-{command}-{label}": (["sae", command, name, *rest], NAME_REFUSED)
       for command, rest in (("train", SAE[3:]), ("sweep", SWEEP[3:]), ("eval", ["--sae", "x"]), ("list", []),
                             ("scoreboard", ["--sae", "x"]))
       for label, name in (("dotdot-passwd", "../../etc/passwd"), ("abs-passwd", "/etc/passwd"), ("dotdot", ".."),
                           ("empty", ""), ("script", SCRIPT))},
    "sae-train-model-unknown": (["sae", "train", "no-such-model", *SAE[3:]], "no model named 'no-such-model'"),
    "sae-train-layer-unknown": ([*SAE[:4], "../layers.0", *SAE[5:]],
                                "'../layers.0' is not a hidden layer of this model; choose one of ['layers.0']"),
    "sae-train-layer-output": ([*SAE[:4], "layers.1", *SAE[5:]], "'layers.1' is not a hidden layer of this model"),
    "sae-train-latents-zero": ([*SAE[:6], "0", *SAE[7:]],
                               "the number of latents must be a whole number in 1..65536, got 0"),
    "sae-train-latents-negative": ([*SAE[:6], "-5", *SAE[7:]],
                                   "the number of latents must be a whole number in 1..65536, got -5"),
    "sae-train-latents-huge": ([*SAE[:6], HUGE, *SAE[7:]], "the number of latents must be a whole number in 1..65536"),
    "sae-train-latents-too-many-for-the-layer": (["sae", "train", "challenge-cnn", "--layer", "fc1", "--latents",
                                                  "65536", "--kind", "topk", "--k", "4"],
                                                 "65536 latents on 200 units would be 100 MiB of weights, over the 64 "
                                                 "MiB limit for weights files; use at most 41837"),
    "sae-train-k-zero": ([*SAE[:-1], "0"], "k must be a whole number in 1..65536, got 0"),
    "sae-train-k-above-latents": ([*SAE[:-1], "65"], "k (65) must be at most the number of latents (64)"),
    "sae-train-k-missing": (SAE[:-2], "--kind topk needs --k K (the latents active per row)"),
    "sae-train-l1-missing": (SAE_L1[:-2], "--kind l1 needs --l1 C (the L1 coefficient, e.g. 1.0)"),
    "sae-train-l1-nan": ([*SAE_L1[:-1], "nan"], "the L1 coefficient must be a positive number, got nan"),
    "sae-train-l1-inf": ([*SAE_L1[:-1], "inf"], "the L1 coefficient must be a positive number, got inf"),
    "sae-train-l1-negative": ([*SAE_L1[:-1], "-1"], "the L1 coefficient must be a positive number, got -1.0"),
    "sae-train-l1-with-topk": ([*SAE, "--l1", "1"], "--l1 is for --kind l1; a TopK dictionary takes --k"),
    "sae-train-k-with-l1": ([*SAE_L1, "--k", "4"], "--k is for --kind topk; an L1 dictionary takes --l1"),
    "sae-train-seed-negative": ([*SAE, "--seed", "-1"],
                                "the seed must be a whole number in 0..9223372036854775807, got -1"),
    "sae-train-seed-huge": ([*SAE, "--seed", HUGE], "the seed must be a whole number in 0..9223372036854775807"),
    "sae-train-steps-zero": ([*SAE, "--steps", "0"], "steps must be a whole number in 1..1000000, got 0"),
    "sae-train-name-path": ([*SAE, "--name", "../../etc/passwd"], "is not a valid dictionary id"),
    "sae-train-name-absolute": ([*SAE, "--name", "/etc/passwd"], "is not a valid dictionary id"),
    "sae-train-name-dotdot": ([*SAE, "--name", ".."], "is not a valid dictionary id"),
    "sae-train-name-script": ([*SAE, "--name", SCRIPT], "is not a valid dictionary id"),
    "sae-train-name-taken": ([*SAE, "--name", "layers.0-topk512"],
                             "mlp-1x64 already has a dictionary 'layers.0-topk512' (pass --overwrite"),
    "sae-eval-unknown": (["sae", "eval", "mlp-1x64", "--sae", "nope"],
                         "mlp-1x64 has no dictionary 'nope' (known: layers.0-topk2048, layers.0-topk256, "
                         "layers.0-topk512,"),
    "sae-scoreboard-unknown": (["sae", "scoreboard", "mlp-1x64", "--sae", "nope"],
                               "mlp-1x64 has no dictionary 'nope' (known: layers.0-topk2048,"),
    "sae-sweep-latents-junk": ([*SWEEP[:6], "8,x", *SWEEP[7:]],
                               "--latents takes whole numbers separated by commas, e.g. 64,128,256; got '8,x'"),
    "sae-sweep-latents-twice": ([*SWEEP[:6], "8,8", *SWEEP[7:]], "--latents needs at least one number and none twice"),
    "sae-sweep-latents-empty": ([*SWEEP[:6], ",", *SWEEP[7:]], "--latents needs at least one number and none twice"),
    "sae-sweep-k-junk": ([*SWEEP[:-1], SCRIPT], "--k takes whole numbers separated by commas"),
    "sae-sweep-k-above-latents": ([*SWEEP[:-1], "2,99"], "k (99) must be at most the number of latents (8)"),
    "sae-sweep-taken": (["sae", "sweep", "mlp-1x64", "--layer", "layers.0", "--latents", "64,512", "--kind", "topk",
                         "--k", "16"], "mlp-1x64 already has a dictionary 'layers.0-topk64'"),
    "sae-sweep-too-many": ([*SWEEP[:6], ",".join(str(n) for n in range(1, 14)), *SWEEP[7:]],
                           "a sweep trains 1 to 12 dictionaries, got 13"),
    "sae-eval-other-models": (["sae", "eval", "challenge-cnn", "--sae", "layers.0-topk512"],
                              "challenge-cnn has no dictionary 'layers.0-topk512' (known: fc1-topk512)"),
    "sae-eval-id-path": (["sae", "eval", "mlp-1x64", "--sae", "../../etc/passwd"], "is not a valid dictionary id"),
    "sae-eval-id-absolute": (["sae", "eval", "mlp-1x64", "--sae", "/etc/passwd"], "is not a valid dictionary id"),
    "sae-eval-id-dotdot": (["sae", "eval", "mlp-1x64", "--sae", ".."], "is not a valid dictionary id"),
    "sae-eval-id-up-to-the-model": (["sae", "eval", "mlp-1x64", "--sae", "../dictionaries"],
                                    "is not a valid dictionary id"),
    "sae-eval-id-script": (["sae", "eval", "mlp-1x64", "--sae", SCRIPT], "is not a valid dictionary id"),
    "sae-list-unknown": (["sae", "list", "no-such-model"], "no model named 'no-such-model'"),
}


#: Rows whose argument can only be judged against a computed analysis (``pc99`` against the fitted PCA, a
#: unit group name against the layer's dead units): the analysis they needed may stay in the cache,
#: complete and verified, nothing else.
NEEDS_AN_ANALYSIS = {"pca-direction-script", "pca-direction-file-template", "featviz-units-script",
                     "featviz-direction-pc-out-of-range"}


@pytest.fixture
def untouched(request, tmp_path, monkeypatch):
    """Run in an empty folder with a private empty cache; afterwards the zoo and MNIST are as before, the
    folder is still empty, and the cache is too (or, for ``NEEDS_AN_ANALYSIS``, holds only whole entries)."""
    monkeypatch.chdir(tmp_path)
    cache = tmp_path / "cache"
    monkeypatch.setenv("MECHMNISTIC_CACHE", str(cache))
    before = snapshot()
    yield
    after = snapshot()
    row = request.node.callspec.id
    if row in NEEDS_AN_ANALYSIS:
        for line in changes(before, after):
            assert line.startswith(f"new: {cache}"), line
            if line.endswith(".npz"):
                with np.load(line.removeprefix("new: "), allow_pickle=False) as entry:
                    assert entry.files
        after = {path: state for path, state in after.items() if not path.startswith(str(cache))}
    assert changes(before, after) == []
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["cache"]), "something written into the folder"


@pytest.mark.parametrize(("args", "message"), ROWS.values(), ids=ROWS.keys())
def test_a_bad_argument_exits_2_with_one_clear_line(args, message, untouched):
    code, out, err = cli(*args)
    assert code == 2, f"exit {code}; stderr: {err}"
    assert message in err, err
    assert "Traceback" not in err and out == ""
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"mechmnistic {args[0]}: error: ") and message in last, "the reason is one line"


@pytest.mark.slow
@pytest.mark.parametrize("row", ["train-width-huge", "scrub-seed-negative", "hypothesis-labels-no-such-class",
                                 "card-dotdot-passwd"])
def test_a_bad_argument_through_the_real_entry_point(row, untouched):
    args, message = ROWS[row]
    done = subprocess.run([sys.executable, "-m", "mechmnistic", *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines()[-1].endswith(message) or message in done.stderr.strip().splitlines()[-1]
    assert "Traceback" not in done.stderr
