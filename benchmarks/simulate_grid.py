"""Benchmark of the reference simulation on the training grid.

Simulates a contiguous shard of the default training grid (all five sources,
10k decays per source and point) several times, and reports the median rate
in decays per second, the time extrapolated to the whole grid
(9261 points x 5 sources x 10k decays = 463M decays) and the peak resident
memory of the writer and of the worker processes.

    .venv/bin/python benchmarks/simulate_grid.py --shard 1/463 --jobs 2 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import tempfile
import time

from neuromct_tf.sim.runner import parse_shard, simulate_grid
from neuromct_tf.specs import default_spec


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo (Linux), or the platform's processor string."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shard", default="1/463", help="shard i/N of the training grid to simulate")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions; the median is reported")
    args = parser.parse_args()

    spec = default_spec()
    grid = spec.grid("training")
    shard = parse_shard(args.shard)
    rates = []
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory() as out_dir:
            summary = simulate_grid(spec, "training", out_dir, seed=repeat, shard=shard, num_jobs=args.jobs)
        rates.append(summary.events_per_second)
        print(f"repeat {repeat}: {summary.num_events} decays in {summary.wall_seconds:.1f} s, {summary.events_per_second:,.0f} decays/s")

    total_events = grid.num_points * len(spec.sources) * grid.events
    median_rate = statistics.median(rates)
    peak_self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_workers_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {cpu_model()}, {os.cpu_count()} cores",
        "shard": args.shard,
        "jobs": args.jobs,
        "median_decays_per_second": round(median_rate),
        "rates": [round(r) for r in rates],
        "full_grid_minutes_extrapolated": round(total_events / median_rate / 60, 1),
        "peak_rss_writer_mb": round(peak_self_mb),
        "peak_rss_largest_worker_mb": round(peak_workers_mb),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
