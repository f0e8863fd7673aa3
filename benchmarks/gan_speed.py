"""Speed of the GAN generator and of fits with it, and the choice of the number of noise samples.

Three parts, each switched on by its option:

* ``--generate-repeats N``: events generated per second by
  :func:`neuromct_tf.models.gan.generate_events`, ``--events`` per source at
  the nominal point, N repeats (median reported).
* ``--fit-repeats N``: wall time of ``neuromct-tf fit CALIB --model GAN``
  in its default configuration (MLE, then HMC), each repeat in a fresh
  process, from the process start to its exit (median reported), and the
  fit's own timings from ``result.json``.
* ``--samples S1,S2,...``: fits of the calibration file in this process for
  each number of noise samples S. ``--noise-seeds`` MLE fits differ only in
  the seed of the noise vectors, so their spread is the template noise of S
  samples and their mean minus the truth is the bias. The study also records
  the median MLE error, the posterior standard deviation of one HMC fit with
  ``--hmc-chains`` chains, and the time of one likelihood gradient for 32
  chains.

    .venv/bin/python benchmarks/gan_speed.py --model neuromct_tf/models/default_gan.keras \\
        --generate-repeats 5 --fit-repeats 3 --samples 250,1000,4000 --json gan_speed.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: Truth of examples/calib_example.root (kB g/cm2/GeV, fC, LY photons/MeV).
EXAMPLE_TRUTH = (12.75, 0.425, 9850.0)
PHYSICS = ("kB", "fC", "LY")


def generation_rate(model: Path, num_events: int, repeats: int) -> dict:
    """Return the events per second of each repeat (all sources) and their median."""
    from neuromct_tf.models.gan import generate_events, load_generator
    from neuromct_tf.specs import default_spec

    spec = default_spec()
    generator, _ = load_generator(model, spec)
    point = spec.nominal()
    generate_events(generator, point, 0, 1000, np.random.default_rng(0))  # trace once
    rates = []
    for repeat in range(repeats):
        start = time.perf_counter()
        for source_id in range(len(spec.sources)):
            generate_events(generator, point, source_id, num_events, np.random.default_rng([repeat, source_id]))
        rates.append(len(spec.sources) * num_events / (time.perf_counter() - start))
    return {"events_per_source": num_events, "rates": rates, "median": statistics.median(rates)}


def fit_wall_times(model: Path, calib: Path, repeats: int) -> dict:
    """Run the default fit in fresh processes and return wall times and the fit timings of result.json."""
    cli = Path(sys.executable).with_name("neuromct-tf")
    walls, timings, estimates = [], [], []
    for repeat in range(repeats):
        with tempfile.TemporaryDirectory() as directory:
            command = [
                str(cli), "--quiet", "fit", str(calib), "--model", str(model), "--out", directory,
                "--seed", str(repeat + 1), "--truth", ",".join(str(v) for v in EXAMPLE_TRUTH), "--overwrite",
            ]
            start = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            walls.append(time.perf_counter() - start)
            result = json.loads((Path(directory) / "result.json").read_text())
            timings.append(result.get("timings", {}))
            estimates.append({name: result["parameters"][name]["median"] for name in PHYSICS})
    return {"wall_seconds": walls, "median_wall_seconds": statistics.median(walls), "timings": timings, "estimates": estimates}


def samples_study(
    model: Path, calib: Path, sample_counts: list[int], noise_seeds: int, mle_starts: int, hmc_chains: int, hmc_max_samples: int,
    smoothing: float | None = None,
) -> list[dict]:
    """Fit the calibration file with each number of noise samples; see the module docstring."""
    import tensorflow as tf

    from neuromct_tf.inference.fit import FitConfig, run_fit
    from neuromct_tf.inference.model import ObservedSpectra, PosteriorModel
    from neuromct_tf.inference.sampling import SamplerConfig
    from neuromct_tf.io.calib import LAYOUT_PRESETS, read_calibration
    from neuromct_tf.models.surrogate import load_surrogate
    from neuromct_tf.specs import default_spec

    spec = default_spec()
    observed = ObservedSpectra.from_calibration(read_calibration(calib, spec, LAYOUT_PRESETS["tree"]), spec)
    truth = np.asarray(EXAMPLE_TRUTH)
    rows = []
    for num_samples in sample_counts:
        points, errors, mle_seconds = [], [], []
        for seed in range(noise_seeds):
            surrogate, _ = load_surrogate(model, spec, num_samples=num_samples, seed=seed, smoothing=smoothing)
            start = time.perf_counter()
            config = FitConfig(method="mle", sampler=SamplerConfig(seed=seed), num_starts=mle_starts)
            result = run_fit(surrogate, spec, observed, config)
            mle_seconds.append(time.perf_counter() - start)
            points.append(result.mle.point[:3])
            errors.append(result.mle.errors[:3])
        points, errors = np.array(points), np.array(errors)

        surrogate, _ = load_surrogate(model, spec, num_samples=num_samples, seed=0, smoothing=smoothing)
        posterior = PosteriorModel(surrogate, spec, observed)
        state = tf.constant(np.tile(np.concatenate([truth, np.ones(len(observed.sources))]), (32, 1)), tf.float64)
        gradient_fn = tf.function(lambda s: tf.gradients(tf.reduce_sum(posterior.target_log_prob(s)), s)[0])
        gradient_fn(state)
        gradient_seconds = []
        for _ in range(3):
            start = time.perf_counter()
            gradient_fn(state).numpy()
            gradient_seconds.append(time.perf_counter() - start)

        row = {
            "num_samples": num_samples,
            "smoothing_kNPE": surrogate.smoothing,
            "mle_mean_minus_truth": dict(zip(PHYSICS, (points.mean(axis=0) - truth).tolist())),
            "mle_spread_over_noise_seeds": dict(zip(PHYSICS, points.std(axis=0, ddof=1).tolist())) if noise_seeds > 1 else None,
            "median_mle_error": dict(zip(PHYSICS, np.median(errors, axis=0).tolist())),
            "median_mle_seconds": statistics.median(mle_seconds),
            "gradient_seconds_32_chains": statistics.median(gradient_seconds),
        }
        if num_samples <= hmc_max_samples:
            start = time.perf_counter()
            hmc = run_fit(surrogate, spec, observed, FitConfig(sampler=SamplerConfig(num_chains=hmc_chains, seed=0)))
            row.update({
                "hmc_chains": hmc_chains,
                "hmc_seconds": time.perf_counter() - start,
                "posterior_mean_minus_truth": {s.name: s.mean - t for s, t in zip(hmc.summaries[:3], truth)},
                "posterior_std": {s.name: s.std for s in hmc.summaries[:3]},
                "acceptance_rate": hmc.posterior.diagnostics.acceptance_rate,
                "min_ess_physics": float(np.min(hmc.posterior.diagnostics.ess[:3])),
            })
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("neuromct_tf/models/default_gan.keras"), help="generator .keras file")
    parser.add_argument("--calib", type=Path, default=Path("examples/calib_example.root"), help="calibration file of the fits")
    parser.add_argument("--events", type=int, default=1_000_000, help="events per source and generation repeat")
    parser.add_argument("--generate-repeats", type=int, default=0, help="repeats of the generation benchmark (0: skip)")
    parser.add_argument("--fit-repeats", type=int, default=0, help="default fits in fresh processes (0: skip)")
    parser.add_argument("--samples", default="", help="comma-separated numbers of noise samples to study (empty: skip)")
    parser.add_argument("--noise-seeds", type=int, default=3, help="MLE fits per number of samples, one per noise seed")
    parser.add_argument("--smoothing", type=float, default=None, help="kernel width of the GAN binning in kNPE; the library default when omitted")
    parser.add_argument("--mle-starts", type=int, default=6, help="L-BFGS starts of each MLE fit")
    parser.add_argument("--hmc-chains", type=int, default=32, help="chains of the HMC fit per number of samples")
    parser.add_argument("--hmc-max-samples", type=int, default=10**9, help="run the HMC fit only for sample counts up to this")
    parser.add_argument("--json", type=Path, default=None, help="also write the summary to this file")
    args = parser.parse_args()

    summary = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cores": len(os.sched_getaffinity(0)),
        "load_average_at_start": os.getloadavg(),
        "model": str(args.model),
    }
    if args.generate_repeats:
        summary["generation"] = generation_rate(args.model, args.events, args.generate_repeats)
    if args.fit_repeats:
        summary["fit"] = fit_wall_times(args.model, args.calib, args.fit_repeats)
    if args.samples:
        counts = [int(part) for part in args.samples.split(",")]
        summary["samples"] = samples_study(
            args.model, args.calib, counts, args.noise_seeds, args.mle_starts, args.hmc_chains, args.hmc_max_samples,
            args.smoothing,
        )
    summary["load_average_at_end"] = os.getloadavg()
    text = json.dumps(summary, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
