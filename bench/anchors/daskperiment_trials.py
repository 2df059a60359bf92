"""daskperiment_trials.py — the anchor of bench/trials: daskperiment 0.5
runs the quickstart graph (persisted prepare_data, result calculate_score,
no metric unless --metric) N times on a fresh local backend in the current
directory, then prints one line 'trials N SECONDS RATE LAST_RATE SIZE ALLOCATED'
(bytes of every file under daskperiment_cache/ afterwards: apparent
size, and blocks allocated on disk)."""
import argparse
import logging
import os
import pathlib
import sys
import time

import numpy as np


def tree_bytes(root):
    """(apparent size, allocated bytes) of every file under root."""
    size = blocks = 0
    for dirpath, _, files in os.walk(root):
        for f in files:
            st = os.lstat(os.path.join(dirpath, f))
            size += st.st_size
            blocks += st.st_blocks * 512
    return size, blocks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--metric", action="store_true")
    args = ap.parse_args()
    tail = min(1000, args.n)

    # daskperiment runs a trial as soon as a result is defined when it
    # is imported by a script (its script mode, reading sys.argv); the
    # benchmark computes the trials itself, so it is told it is not one.
    import daskperiment
    from daskperiment.environment.python import PythonEnvironment
    PythonEnvironment.maybe_file = lambda self: False
    logging.getLogger("daskperiment").setLevel(logging.WARNING)

    ex = daskperiment.Experiment(id="quickstart_pj")
    a = ex.parameter("a")
    b = ex.parameter("b")

    @ex.persist
    def prepare_data(a, b):
        return a + b

    @ex.result
    def calculate_score(s):
        if args.metric:
            for epoch in range(100):
                ex.save_metric("dummy_score", epoch=epoch,
                               value=100 - np.random.random() * epoch)
        return 10 / s

    d = prepare_data(a, b)
    s = calculate_score(d)
    ex.set_parameters(a=1, b=2)

    t0 = time.monotonic()
    tail_start = t0
    for i in range(args.n):
        if i == args.n - tail:
            tail_start = time.monotonic()
        s.compute()
    t1 = time.monotonic()
    secs = t1 - t0
    size, blocks = tree_bytes(pathlib.Path("daskperiment_cache"))
    print(f"trials {args.n} {secs:.3f} {args.n / secs:.1f} "
          f"{tail / (t1 - tail_start):.1f} {size} {blocks}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
