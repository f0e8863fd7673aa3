"""Benchmark of batched regressor prediction through the ``tf.function`` path.

Builds a regressor of the given sizes (the weights do not change the cost),
compiles the prediction graph once, then times repeated calls on batches of
random points and sources, and reports the median spectra per second.

    .venv/bin/python benchmarks/regressor_throughput.py --batch-sizes 1024 4096 16384 --repeats 20
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

from neuromct_tf.models.bundled import default_regressor_path
from neuromct_tf.models.regressor import RegressorConfig, build_regressor, count_weights, load_regressor, make_predict_fn
from neuromct_tf.specs import default_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1024, 4096, 16384])
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per batch size; the median is reported")
    parser.add_argument("--bundled", action="store_true", help="time the bundled model instead of a default-size one")
    parser.add_argument("--xla", action="store_true", help="compile the prediction with XLA")
    args = parser.parse_args()

    import tensorflow as tf

    spec = default_spec()
    model = load_regressor(default_regressor_path(), spec)[0] if args.bundled else build_regressor(spec, RegressorConfig())
    predict_fn = make_predict_fn(model, jit_compile=args.xla)
    rng = np.random.default_rng(0)
    box = spec.box()
    results = []
    for batch_size in args.batch_sizes:
        params = tf.constant(rng.uniform(box[:, 0], box[:, 1], (batch_size, 3)).astype(np.float32))
        source = tf.constant(rng.integers(0, len(spec.sources), batch_size).astype(np.int32))
        predict_fn(params, source).numpy()
        timings = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            predict_fn(params, source).numpy()
            timings.append(time.perf_counter() - start)
        rate = batch_size / statistics.median(timings)
        results.append({"batch_size": batch_size, "median_spectra_per_second": round(rate)})
        print(f"batch {batch_size:6d}: {rate:,.0f} spectra/s")
    print(json.dumps({
        "weights": count_weights(model), "xla": args.xla, "threads": os.cpu_count(),
        "tensorflow": tf.__version__, "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
