"""Plot the mean detected photo-electrons per MeV of a single electron against its kinetic energy.

The left panel shows several Birks constants at the nominal Cherenkov factor, the
right panel several Cherenkov factors at the nominal Birks constant. Both use the
nominal light yield and the default detection efficiency. The curves are means
(no sampling).

Usage::

    PYTHONPATH=. python scripts/plot_light_response.py [--output docs/_static/light_response.png]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from neuromct_tf.sim import detection, light  # noqa: E402
from neuromct_tf.sim.deposits import ELECTRON, PROMPT, Deposits  # noqa: E402

logger = logging.getLogger(__name__)

DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "_static" / "light_response.png"
BIRKS_KB_VALUES = (5.0, 10.0, 15.45, 20.0, 30.0)
CHERENKOV_FACTOR_VALUES = (0.0, 0.25, 0.525, 0.75, 1.0)


def npe_per_mev(model: light.LightModel, energy: np.ndarray, birks_kb: float, cherenkov_factor: float) -> np.ndarray:
    """Return the mean photo-electrons per MeV of single electrons of kinetic energies ``energy`` (MeV)."""
    deposits = Deposits(
        trigger=np.arange(energy.size),
        kinetic_energy=energy,
        particle=np.full(energy.size, ELECTRON, dtype=np.int8),
        trigger_kind=np.full(energy.size, PROMPT, dtype=np.int8),
    )
    photons = model.mean_photons(deposits, birks_kb, cherenkov_factor, light.NOMINAL_LIGHT_YIELD)
    return detection.DEFAULT_RESPONSE.detection_efficiency * photons / energy


def plot(output: Path) -> None:
    """Draw both panels and write the figure to ``output``."""
    model = light.LightModel.default()
    energy = np.geomspace(0.05, 10.0, 300)
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4), sharey=True, constrained_layout=True)

    for birks_kb in BIRKS_KB_VALUES:
        curve = npe_per_mev(model, energy, birks_kb, light.NOMINAL_CHERENKOV_FACTOR)
        left.plot(energy, curve, label=f"kB = {birks_kb:g} g/cm$^2$/GeV")
    left.set_title(f"fC = {light.NOMINAL_CHERENKOV_FACTOR:g}")

    for factor in CHERENKOV_FACTOR_VALUES:
        curve = npe_per_mev(model, energy, light.NOMINAL_BIRKS_KB, factor)
        right.plot(energy, curve, label=f"fC = {factor:g}")
    right.set_title(f"kB = {light.NOMINAL_BIRKS_KB:g} g/cm$^2$/GeV")

    for axis in (left, right):
        axis.set_xscale("log")
        axis.set_xlabel("electron kinetic energy [MeV]")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    left.set_ylabel("mean NPE per MeV")
    figure.suptitle(f"Single electrons, LY = {light.NOMINAL_LIGHT_YIELD:g} photons/MeV")

    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=120)
    plt.close(figure)
    logger.info("wrote %s", output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="PNG file to write")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    plot(args.output)


if __name__ == "__main__":
    main()
