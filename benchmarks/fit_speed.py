"""Benchmark of the fit: wall time and effective sample size of HMC, NUTS, emcee and UltraNest.

Simulates a pseudo-calibration file at the nominal point with the reference
simulation, then samples the same posterior (the ``PosteriorModel`` of the
regressor) with

* ``neuromct-tf fit`` in its default configuration (HMC), ``--repeats`` times,
  each in a fresh process started with ``subprocess``. The wall time of a
  repeat runs from the process start to its exit. It includes importing
  TensorFlow, loading the model, tracing the graphs and writing the outputs;
* ``neuromct-tf fit --xla`` and ``neuromct-tf fit --sampler nuts``, once each,
  timed the same way;
* ``emcee.EnsembleSampler`` and ``ultranest.ReactiveNestedSampler`` in this
  process, on the log posterior through a batched numpy wrapper of
  ``PosteriorModel.target_log_prob``. Their wall time runs from before the
  model load to the end of sampling, and includes tracing the wrapper.

The summary (JSON, on stdout and in ``--json``) gives per sampler the wall
time, R-hat and ESS per kB, fC and LY, the minimum ESS and ESS per second of
wall time.

    .venv/bin/python benchmarks/fit_speed.py --json fit_speed.json

Needs the ``bench`` extra (``pip install -e .[bench]``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from neuromct_tf.io.calib import LAYOUT_PRESETS, read_calibration
from neuromct_tf.sim.runner import simulate_calibration
from neuromct_tf.specs import default_spec

#: Nominal (kB g/cm2/GeV, fC, LY photons/MeV) of the pseudo-data.
NOMINAL = (15.45, 0.525, 10100.0)
PHYSICS = ("kB", "fC", "LY")


def machine_info() -> dict:
    """Return the CPU model, the usable cores, the load average and the date."""
    model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model,
        "cores": len(os.sched_getaffinity(0)),
        "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
    }


def cli_path() -> str:
    """Return the ``neuromct-tf`` script next to this interpreter."""
    return str(Path(sys.executable).with_name("neuromct-tf"))


#: Python program that runs the command line with TensorFlow's graph optimizer left on, to measure what turning it off saves.
WITH_GRAPH_OPTIMIZER = (
    "import sys; import neuromct_tf.cli.fit as fit_command; "
    "fit_command.skip_graph_optimizer = lambda: None; "
    "from neuromct_tf.cli.main import run; sys.argv[0] = 'neuromct-tf'; run()"
)


def run_cli_fit(calib: Path, out: Path, model: str | None, extra: list[str], graph_optimizer: bool = False) -> dict:
    """Run ``neuromct-tf fit`` in a fresh process and return its timings and diagnostics.

    With ``graph_optimizer=True`` the command runs with TensorFlow's graph
    optimizer on, which ``neuromct-tf fit`` turns off.
    """
    program = [sys.executable, "-c", WITH_GRAPH_OPTIMIZER] if graph_optimizer else [cli_path()]
    command = program + ["--quiet", "fit", str(calib), "--out", str(out), "--overwrite", "--truth", ",".join(map(str, NOMINAL))]
    if model is not None:
        command += ["--model", model]
    command += extra
    start = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True)
    process_seconds = time.perf_counter() - start
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed with exit status {completed.returncode}:\n{completed.stderr}")
    result = json.loads((out / "result.json").read_text())
    diagnostics = result["diagnostics"]
    return {
        "command": " ".join(["neuromct-tf", "fit", "CALIB.root"] + extra) + (" (graph optimizer on)" if graph_optimizer else ""),
        "process_seconds": process_seconds,
        "job_seconds": result["wall_seconds"],
        "fit_seconds": result["timings"]["total"],
        "mle_seconds": result["timings"]["mle"],
        "sampling_seconds": result["timings"]["sampling"],
        "r_hat": {name: diagnostics["r_hat"][name] for name in PHYSICS},
        "ess": {name: diagnostics["ess"][name] for name in PHYSICS},
        "num_divergences": diagnostics["num_divergences"],
        "mean_leapfrog_steps": diagnostics["mean_leapfrog_steps"],
        "estimates": {name: [result["parameters"][name]["mean"], result["parameters"][name]["std"]] for name in PHYSICS},
    }


def summarise_cli(name: str, runs: list[dict]) -> dict:
    """Return the run of median process time, with the times of all repeats and ESS per second."""
    order = sorted(range(len(runs)), key=lambda i: runs[i]["process_seconds"])
    median_run = dict(runs[order[len(order) // 2]])
    median_run["sampler"] = name
    median_run["wall_seconds"] = statistics.median(run["process_seconds"] for run in runs)
    median_run["process_seconds_all"] = [round(run["process_seconds"], 2) for run in runs]
    return finish_entry(median_run)


def finish_entry(entry: dict) -> dict:
    """Add the minimum ESS over kB, fC, LY, ESS per second of wall time and the maximum R-hat."""
    entry["min_ess"] = min(entry["ess"][name] for name in PHYSICS)
    entry["ess_per_second"] = entry["min_ess"] / entry["wall_seconds"]
    r_hats = [value for value in entry.get("r_hat", {}).values() if value is not None]
    entry["max_r_hat"] = max(r_hats) if r_hats else None
    return entry


class NumpyLogPosterior:
    """Batched numpy wrapper of ``PosteriorModel.target_log_prob``, for samplers outside TensorFlow.

    Calls take states of shape (n, 3 + S) and return float64 (n,). One
    ``tf.function`` with a free batch dimension serves every batch size, so
    the graph is traced once.
    """

    def __init__(self, posterior):
        import tensorflow as tf

        self.num_calls = 0
        self.num_points = 0
        self._function = tf.function(
            posterior.target_log_prob,
            input_signature=[tf.TensorSpec((None, posterior.num_params), tf.float64)],
            autograph=False,
        )

    def __call__(self, states: np.ndarray) -> np.ndarray:
        states = np.atleast_2d(np.asarray(states, dtype=np.float64))
        self.num_calls += 1
        self.num_points += states.shape[0]
        return self._function(states).numpy()


def load_posterior(calib: Path, model_path: str | None, spec):
    """Return the ``PosteriorModel`` of the calibration file, with the same defaults as ``neuromct-tf fit``."""
    from neuromct_tf.inference.model import ObservedSpectra, PosteriorModel
    from neuromct_tf.models.bundled import resolve_model_path
    from neuromct_tf.models.regressor import load_regressor

    observed = ObservedSpectra.from_calibration(read_calibration(calib, spec, LAYOUT_PRESETS["tree"]), spec)
    model, _ = load_regressor(resolve_model_path(model_path), spec)
    return PosteriorModel(model, spec, observed)


def run_emcee(calib: Path, model_path: str | None, spec, walkers: int, steps: int, burnin: int, seed: int) -> dict:
    """Sample with ``emcee.EnsembleSampler`` (stretch move), walkers started around the MLE.

    The walkers start from a normal around the MLE with the Hessian covariance
    (clipped into the box), so the burn-in only has to forget a start that is
    already close to the posterior. The ESS of a parameter is
    ``walkers * (steps - burnin) / tau`` with tau from ``emcee.autocorr``.
    """
    import emcee

    from neuromct_tf.inference.mle import fit_mle
    from neuromct_tf.inference.sampling import split_r_hat, stateless_seed

    start = time.perf_counter()
    posterior = load_posterior(calib, model_path, spec)
    log_posterior = NumpyLogPosterior(posterior)
    mle = fit_mle(posterior, stateless_seed(seed))
    rng = np.random.default_rng(seed)
    covariance = mle.covariance if mle.positive_definite else np.diag((1e-3 * (posterior.upper - posterior.lower)) ** 2)
    initial = rng.multivariate_normal(mle.point, covariance, size=walkers)
    margin = 1e-6 * (posterior.upper - posterior.lower)
    initial = np.clip(initial, posterior.lower + margin, posterior.upper - margin)
    mle_seconds = time.perf_counter() - start

    sampler = emcee.EnsembleSampler(walkers, posterior.num_params, log_posterior, vectorize=True)
    sampler.run_mcmc(initial, steps, progress=False)
    wall = time.perf_counter() - start

    tau = sampler.get_autocorr_time(discard=burnin, quiet=True)
    draws = sampler.get_chain(discard=burnin)
    ess = walkers * (steps - burnin) / tau
    # Walkers of an ensemble are not independent chains, so this R-hat is only a rough check.
    r_hat = split_r_hat(draws)
    return finish_entry({
        "sampler": "emcee",
        "settings": f"{walkers} walkers, {steps} steps, first {burnin} discarded, stretch move a=2",
        "wall_seconds": wall,
        "mle_seconds": mle_seconds,
        "sampling_seconds": wall - mle_seconds,
        "log_prob_points": log_posterior.num_points,
        "acceptance_fraction": float(np.mean(sampler.acceptance_fraction)),
        "autocorr_time": dict(zip(PHYSICS, tau[:3].tolist())),
        "autocorr_reliable": bool(steps - burnin > 50 * np.max(tau)),
        "r_hat": dict(zip(PHYSICS, r_hat[:3].tolist())),
        "ess": dict(zip(PHYSICS, ess[:3].tolist())),
        "estimates": {
            name: [float(draws[..., i].mean()), float(draws[..., i].std(ddof=1))] for i, name in enumerate(PHYSICS)
        },
    })


def run_ultranest(calib: Path, model_path: str | None, spec, max_ncalls: int | None) -> dict:
    """Sample with ``ultranest.ReactiveNestedSampler`` at its default settings, vectorised.

    The prior transform maps the unit cube onto the uniform priors, so the
    likelihood is the Poisson likelihood. UltraNest reports one effective
    sample size (Kish's, of the weighted posterior samples), the same for
    every parameter.
    """
    import ultranest

    start = time.perf_counter()
    posterior = load_posterior(calib, model_path, spec)
    log_posterior = NumpyLogPosterior(posterior)
    lower, width = posterior.lower, posterior.upper - posterior.lower
    # The prior density is constant inside the box, so the log posterior differs from log L by a constant.
    log_prior_density = -float(np.sum(np.log(width)))

    def transform(cube):
        return lower + width * cube

    def log_likelihood(points):
        return log_posterior(points) - log_prior_density

    sampler = ultranest.ReactiveNestedSampler(list(posterior.names), log_likelihood, transform, vectorized=True)
    result = sampler.run(max_ncalls=max_ncalls, show_status=False, viz_callback=False)
    wall = time.perf_counter() - start
    samples = np.asarray(result["samples"])
    ess = float(result["ess"])
    return finish_entry({
        "sampler": "ultranest",
        "settings": "ReactiveNestedSampler defaults (400 live points, dlogz 0.5, min_ess 400)"
        + (f", max_ncalls {max_ncalls}" if max_ncalls else ""),
        "wall_seconds": wall,
        "log_prob_points": log_posterior.num_points,
        "ncall": int(result["ncall"]),
        "niter": int(result["niter"]),
        "logz": [float(result["logz"]), float(result["logzerr"])],
        "r_hat": {},
        "ess": {name: ess for name in PHYSICS},
        "estimates": {
            name: [float(samples[:, i].mean()), float(samples[:, i].std(ddof=1))] for i, name in enumerate(PHYSICS)
        },
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000, help="decays per source of the pseudo-calibration set")
    parser.add_argument("--seed", type=int, default=20261204, help="seed of the simulation and of emcee's start")
    parser.add_argument("--model", default=None, help="regressor .keras file; the bundled model when omitted")
    parser.add_argument("--repeats", type=int, default=3, help="fresh-process repeats of the default fit; the median is reported")
    parser.add_argument("--walkers", type=int, default=32, help="emcee walkers")
    parser.add_argument("--steps", type=int, default=4000, help="emcee steps per walker, burn-in included")
    parser.add_argument("--burnin", type=int, default=1000, help="emcee steps discarded per walker")
    parser.add_argument("--ultranest-max-ncalls", type=int, default=None, help="stop UltraNest after this many likelihood calls")
    parser.add_argument(
        "--samplers", nargs="+", default=["hmc", "xla", "nuts", "emcee", "ultranest"],
        choices=["hmc", "hmc-graph-optimizer", "xla", "nuts", "emcee", "ultranest"],
        help="samplers to run; hmc-graph-optimizer repeats the default fit with TensorFlow's graph optimizer on",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the summary to this file")
    args = parser.parse_args()

    spec = default_spec()
    info = machine_info()
    entries = []
    with tempfile.TemporaryDirectory(prefix="fit_speed_") as directory:
        directory = Path(directory)
        calib = directory / "calib.root"
        simulation = simulate_calibration(spec, NOMINAL, args.events, calib, args.seed, LAYOUT_PRESETS["tree"])
        print(f"simulated {simulation.num_triggers} triggers in {simulation.wall_seconds:.1f} s", file=sys.stderr)

        cli_runs = {
            "hmc": ("neuromct-tf fit (HMC)", [], args.repeats, False),
            "hmc-graph-optimizer": ("neuromct-tf fit (HMC), graph optimizer on", [], args.repeats, True),
            "xla": ("neuromct-tf fit --xla", ["--xla"], 1, False),
            "nuts": ("neuromct-tf fit --sampler nuts", ["--sampler", "nuts"], 1, False),
        }
        for key, (name, extra, repeats, graph_optimizer) in cli_runs.items():
            if key not in args.samplers:
                continue
            runs = [
                run_cli_fit(calib, directory / f"fit_{key}", args.model, extra, graph_optimizer) for _ in range(repeats)
            ]
            entries.append(summarise_cli(name, runs))
            print(f"{name}: {entries[-1]['process_seconds_all']} s", file=sys.stderr)
        if "emcee" in args.samplers:
            entries.append(run_emcee(calib, args.model, spec, args.walkers, args.steps, args.burnin, args.seed))
            print(f"emcee: {entries[-1]['wall_seconds']:.1f} s", file=sys.stderr)
        if "ultranest" in args.samplers:
            entries.append(run_ultranest(calib, args.model, spec, args.ultranest_max_ncalls))
            print(f"ultranest: {entries[-1]['wall_seconds']:.1f} s", file=sys.stderr)

    import tensorflow as tf

    info["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    summary = {
        "machine": info,
        "tensorflow": tf.__version__,
        "model": args.model or "bundled",
        "nominal": dict(zip(PHYSICS, NOMINAL)),
        "events_per_source": args.events,
        "seed": args.seed,
        "samplers": entries,
    }
    text = json.dumps(summary, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
