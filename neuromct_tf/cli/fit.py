"""``neuromct-tf fit``: fit kB, fC and LY to calibration spectra with the regressor."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from neuromct_tf.cli.common import (
    STDOUT,
    BranchOption,
    LayoutOption,
    NpeUnitOption,
    ObjectNameOption,
    SourceFilesOption,
    SpecOption,
    parse_numbers,
    parse_source_files,
    read_spec,
    skip_graph_optimizer,
)
from neuromct_tf.errors import InvalidInputError
from neuromct_tf.io.calib import layout_preset


def fit(
    path: Optional[Path] = typer.Argument(
        None, metavar="CALIB.root", help="Calibration file that contains all sources. Omit it when using --file."
    ),
    files: Optional[list[str]] = SourceFilesOption,
    out: Path = typer.Option(
        ..., "--out", "-o", help="Output directory (created if missing) for result.json, chains.root and the plots."
    ),
    model_path: Optional[Path] = typer.Option(
        None, "--model", help="Regressor or GAN generator .keras file; the bundled default regressor when omitted."
    ),
    gan_samples: int = typer.Option(
        1000, "--gan-samples", min=1,
        help="Generated events per source and parameter point that give the spectra of a GAN --model.",
    ),
    layout: str = LayoutOption,
    object_name: Optional[str] = ObjectNameOption,
    branch: Optional[str] = BranchOption,
    npe_unit: Optional[str] = NpeUnitOption,
    method: str = typer.Option(
        "mcmc", "--method",
        help="mcmc: maximum likelihood, then posterior sampling with --sampler; "
        "mle: maximum likelihood only, with Hessian errors (no chains.root or corner.png).",
    ),
    sampler: str = typer.Option(
        "hmc", "--sampler", help="MCMC sampler: hmc (fixed --leapfrog-steps) or nuts (No-U-Turn, adaptive path length)."
    ),
    chains: int = typer.Option(32, "--chains", help="Markov chains run in parallel."),
    burnin: int = typer.Option(
        50, "--burnin", help="Burn-in steps per chain, discarded; the first 80 % adapt the step size."
    ),
    samples: int = typer.Option(80, "--samples", help="Draws kept per chain after burn-in (at least 4)."),
    leapfrog_steps: int = typer.Option(2, "--leapfrog-steps", help="Leapfrog steps per HMC proposal."),
    xla: bool = typer.Option(False, "--xla", help="Compile the optimiser's objective and the sampler run with XLA."),
    seed: int = typer.Option(0, "--seed", help="Seed of the MLE starts, chain starts and transitions; the same seed gives the same chains."),
    truth: Optional[str] = typer.Option(
        None, "--truth", help="Known point kB,fC,LY of pseudo-data, reported and drawn in the corner plot; not used by the fit."
    ),
    norm_range: str = typer.Option(
        "0.8,1.2", "--norm-range", help="Range low,high of the uniform prior of each source's normalisation."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs in --out."),
    spec_file: Optional[Path] = SpecOption,
) -> None:
    """Fit Birks' constant kB, the Cherenkov factor fC and the light yield LY to calibration spectra.

    The likelihood is a product of Poisson terms per bin, with expected counts
    norm_s N_s p_sb(kB, fC, LY) from the regressor, N_s the observed in-range
    count of source s. Priors are uniform on the spec's parameter box and on
    --norm-range. Entries outside the binning are counted and reported, not
    fitted. Sources missing from the input are left out of the fit with a
    warning.
    """
    from neuromct_tf.inference.fit import FitConfig
    from neuromct_tf.inference.output import correlation_table, diagnostics_lines, sources_table, summary_table
    from neuromct_tf.inference.pipeline import fit_calibration
    from neuromct_tf.inference.sampling import SamplerConfig

    spec = read_spec(spec_file)
    if (path is None) == (not files):
        raise InvalidInputError("give either one CALIB.root or --file SOURCE=PATH options, not both or neither")
    config = FitConfig(
        method=method,
        sampler=SamplerConfig(
            sampler=sampler, num_chains=chains, num_burnin_steps=burnin, num_results=samples,
            num_leapfrog_steps=leapfrog_steps, jit_compile=xla, seed=seed,
        ),
        norm_range=parse_numbers(norm_range, "--norm-range", 2, "0.8,1.2"),
        truth=None if truth is None else parse_numbers(truth, "--truth", 3, "15.45,0.525,10100"),
    )
    inputs = parse_source_files(files) if files else path
    calib_layout = layout_preset(layout).with_options(object_name, branch, npe_unit)
    skip_graph_optimizer()
    outputs = fit_calibration(inputs, spec, out, config, calib_layout, model_path, overwrite, gan_samples=gan_samples)

    result = outputs.result
    STDOUT.print(summary_table(result))
    STDOUT.print(correlation_table(result))
    STDOUT.print(sources_table(result))
    for line in diagnostics_lines(result):
        STDOUT.print(line)
    if result.observed.missing:
        STDOUT.print(f"sources not found, left out of the fit: {', '.join(result.observed.missing)}")
    for written in outputs.paths.values():
        STDOUT.print(f"wrote {written}")
    STDOUT.print(f"model {outputs.model_path}; job time {outputs.wall_seconds:.1f} s")
