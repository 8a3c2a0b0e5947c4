"""Reproducible training: `rasa train` with every source of run-to-run variation pinned.

The seeds in config.yml fix DIET's initial weights and batch order, but on a CPU TensorFlow
still sums in parallel over as many threads as the machine has, and floating-point sums in a
different order give a slightly different model (the held-out figures moved by 0.008 between
two trainings with the same seeds). Training runs here with one TensorFlow thread, TensorFlow's
deterministic ops, oneDNN's CPU-specific kernels off (they differ between AVX2 and AVX-512
machines), one BLAS thread (the emergency detector's solver) and a fixed hash seed, so two
cold trainings of the same data give the same model.

    python -m bot.train [--fixed-model-name clinic] [any other `rasa train` option]
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence

from bot.settings import PROJECT_ROOT

DETERMINISTIC_ENV: Mapping[str, str] = {
    "TF_INTER_OP_PARALLELISM_THREADS": "1",  # read by Rasa at start-up (tf.config.threading)
    "TF_INTRA_OP_PARALLELISM_THREADS": "1",
    "TF_DETERMINISTIC_OPS": "1",
    # oneDNN picks kernels by CPU (AVX2, AVX-512...) and reorders sums: off for portability
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYTHONHASHSEED": "0",  # must be set before the interpreter starts, hence a subprocess
}


def training_env(base: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The environment for a reproducible `rasa train` (and `rasa test`) run."""
    env = dict(os.environ if base is None else base)
    env.update(DETERMINISTIC_ENV)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def rasa_command(args: Sequence[str]) -> list[str]:
    """The virtualenv's `rasa` executable with the given arguments."""
    return [str(Path(sys.executable).parent / "rasa"), *args]


def train(args: Sequence[str] = ("--fixed-model-name", "clinic")) -> int:
    """Run `rasa train` in the project root with the pinned environment; its exit code."""
    return subprocess.run(
        rasa_command(["train", *args]), cwd=PROJECT_ROOT, env=training_env(), check=False
    ).returncode


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Pass the command-line options through to `rasa train`."""
    args = list(sys.argv[1:] if argv is None else argv)
    return train(args or ("--fixed-model-name", "clinic"))


if __name__ == "__main__":
    raise SystemExit(main())
