"""Light emitted by charged-particle deposits: Birks-quenched scintillation and Cherenkov light.

Every deposit is a charged particle that slows down continuously in the LS (the
continuous-slowing-down approximation, CSDA). Along the way it emits

* scintillation light, ``light_yield`` photons per MeV of Birks-quenched energy
  E_q(T) = integral from 0 to T of dE / (1 + kB S(E)), Birks, Proc. Phys. Soc. A 64
  (1951) 874, with S the mass stopping power of :mod:`neuromct_tf.sim.stopping`;
* Cherenkov light (electrons and positrons only), the Frank-Tamm yield integrated
  along the slowing-down path, weighted by the probability that a photon of each
  wavelength counts like a scintillation photon at the photo-detection stage,
  and scaled by ``cherenkov_factor``.

:class:`LightModel` tabulates E_q / T on a (kB, T) grid and N_C(T) once. A call
interpolates the tables, so the cost per deposit is one table lookup.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass

import numpy as np
from scipy.integrate import cumulative_trapezoid

from neuromct_tf.errors import InvalidInputError
from neuromct_tf.sim import medium, stopping
from neuromct_tf.sim.deposits import CARBON, ELECTRON, PROTON, Deposits

logger = logging.getLogger(__name__)

#: Nominal Birks constant in g/cm^2/GeV.
NOMINAL_BIRKS_KB = 15.45
#: Nominal Cherenkov factor (dimensionless, 0-1).
NOMINAL_CHERENKOV_FACTOR = 0.525
#: Nominal scintillation light yield in photons per MeV of quenched energy.
NOMINAL_LIGHT_YIELD = 10100.0

#: Birks constants of the quenching table in g/cm^2/GeV. A call may use any value in this range.
BIRKS_KB_GRID = np.linspace(0.0, 50.0, 201)
#: Kinetic energies of the tables in MeV, log-spaced from 10 eV to 20 MeV (450 points per decade).
ENERGY_GRID = np.geomspace(1e-5, 20.0, 2834)

#: Refractive index of the LS at (wavelength in nm, index): the reference points of this
#: project for a LAB-based LS, fitted by :func:`cauchy_coefficients`.
REFRACTIVE_INDEX_POINTS = ((800.0, 1.478), (589.0, 1.484), (436.0, 1.496), (300.0, 1.526))
#: Wavelength window in nm in which Cherenkov photons are counted.
CHERENKOV_WINDOW_NM = (200.0, 800.0)
#: Photons below this wavelength in nm are absorbed by LAB and PPO within centimetres and
#: re-emitted as scintillation-like light. Longer ones reach the PMTs directly.
REEMISSION_CUTOFF_NM = 350.0
#: Probability that an absorbed UV Cherenkov photon is re-emitted. An estimate: the
#: measured fluorescence quantum yield of bis-MSB is 0.926 +- 0.053 (Ding et al., Chin.
#: Phys. C 39 (2015) 126001), and the chain through PPO loses a little more.
REEMISSION_PROBABILITY = 0.9
#: Wavelengths in nm over which the PMT quantum efficiency, relative to the scintillation
#: light near 430 nm, falls linearly from 1 to 0. NOTE: a rough estimate of the red
#: fall-off of a bialkali photocathode, not a fitted curve.
PHOTOCATHODE_FALLOFF_NM = (450.0, 650.0)

_WAVELENGTH_GRID_NM = np.linspace(*CHERENKOV_WINDOW_NM, 601)
_PARTICLES = (ELECTRON, PROTON, CARBON)


def cauchy_coefficients() -> np.ndarray:
    """Return (A, B, C) of the Cauchy form n = A + B / lambda^2 + C / lambda^4, lambda in micrometres.

    Least-squares fit to :data:`REFRACTIVE_INDEX_POINTS`. The residuals are below 3e-4.
    """
    wavelength_um = np.array([p[0] for p in REFRACTIVE_INDEX_POINTS]) * 1e-3
    index = np.array([p[1] for p in REFRACTIVE_INDEX_POINTS])
    inverse_square = wavelength_um**-2
    design = np.stack([np.ones_like(inverse_square), inverse_square, inverse_square**2], axis=1)
    coefficients, *_ = np.linalg.lstsq(design, index, rcond=None)
    return coefficients


def refractive_index(wavelength_nm: np.ndarray) -> np.ndarray:
    """Return the LS refractive index at ``wavelength_nm`` (any shape).

    NOTE: below 300 nm this extrapolates the fit, which gives 1.605 at 200 nm.
    """
    a, b, c = cauchy_coefficients()
    inverse_square = (np.asarray(wavelength_nm, dtype=np.float64) * 1e-3) ** -2
    return a + b * inverse_square + c * inverse_square**2


def cherenkov_detection_weight(wavelength_nm: np.ndarray) -> np.ndarray:
    """Return the weight of a Cherenkov photon relative to a scintillation photon at the photo-detection stage.

    The weight is :data:`REEMISSION_PROBABILITY` below :data:`REEMISSION_CUTOFF_NM`, 1 from
    there up to the start of :data:`PHOTOCATHODE_FALLOFF_NM`, then falls linearly to 0.
    """
    wavelength = np.asarray(wavelength_nm, dtype=np.float64)
    start, end = PHOTOCATHODE_FALLOFF_NM
    transmitted = np.clip((end - wavelength) / (end - start), 0.0, 1.0)
    return np.where(wavelength < REEMISSION_CUTOFF_NM, REEMISSION_PROBABILITY, transmitted)


def cherenkov_photons_per_length(kinetic_energy: np.ndarray) -> np.ndarray:
    """Return the weighted Frank-Tamm yield of an electron, in photons per cm.

    dN/dx = 2 pi alpha integral of w(lambda) (1 - 1 / (beta^2 n(lambda)^2)) dlambda / lambda^2
    over :data:`CHERENKOV_WINDOW_NM`, where the bracket is positive, with w from
    :func:`cherenkov_detection_weight`. This is the Frank-Tamm formula (Frank and Tamm,
    C. R. Acad. Sci. URSS 14 (1937) 109), also derived in Jackson, Classical
    Electrodynamics, 3rd ed.

    Parameters
    ----------
    kinetic_energy : numpy.ndarray, shape (n,)
        Electron kinetic energy in MeV.
    """
    t = np.asarray(kinetic_energy, dtype=np.float64)
    gamma = 1.0 + t / stopping.ELECTRON_MASS
    beta2 = 1.0 - 1.0 / gamma**2
    wavelength_cm = _WAVELENGTH_GRID_NM * 1e-7
    index = refractive_index(_WAVELENGTH_GRID_NM)
    weight = cherenkov_detection_weight(_WAVELENGTH_GRID_NM)

    emission = np.clip(1.0 - 1.0 / (beta2[:, None] * index[None, :] ** 2), 0.0, None)
    integrand = weight * emission / wavelength_cm**2
    return 2.0 * np.pi * stopping.FINE_STRUCTURE * np.trapezoid(integrand, wavelength_cm, axis=1)


def cherenkov_photon_table(energy_grid: np.ndarray) -> np.ndarray:
    """Return the weighted Cherenkov photons N_C(T) of an electron slowing down from each grid energy.

    N_C(T) = integral from 0 to T of (dN/dx) / (rho S_total) dE, in the CSDA. Delta rays
    above the threshold are not followed, which underestimates N_C by a few per cent.
    """
    path_per_energy = 1.0 / (medium.DENSITY * stopping.electron_stopping_power(energy_grid))  # cm/MeV
    return cumulative_trapezoid(cherenkov_photons_per_length(energy_grid) * path_per_energy, energy_grid, initial=0.0)


def quenched_energy_table(stopping_power: np.ndarray, energy_grid: np.ndarray, birks_kb_grid: np.ndarray) -> np.ndarray:
    """Return E_q(kB, T) in MeV, shape (len(birks_kb_grid), len(energy_grid)).

    Parameters
    ----------
    stopping_power : numpy.ndarray, shape (n_energy,)
        Mass stopping power at ``energy_grid`` in MeV cm^2/g.
    energy_grid : numpy.ndarray, shape (n_energy,)
        Increasing kinetic energies in MeV.
    birks_kb_grid : numpy.ndarray, shape (n_kb,)
        Birks constants in g/cm^2/GeV.

    Notes
    -----
    Below the first grid energy (10 eV) the integrand is taken as constant.
    """
    kb_per_mev = birks_kb_grid[:, None] * 1e-3  # g/cm^2/GeV -> g/cm^2/MeV
    light_per_energy = 1.0 / (1.0 + kb_per_mev * stopping_power[None, :])
    head = energy_grid[0] * light_per_energy[:, :1]
    return head + cumulative_trapezoid(light_per_energy, energy_grid, axis=1, initial=0.0)


def _stopping_power_of(particle: int, energy: np.ndarray) -> np.ndarray:
    """Return the stopping power in MeV cm^2/g of ``particle`` (a deposit particle code)."""
    functions = {
        ELECTRON: stopping.electron_stopping_power,
        PROTON: stopping.proton_stopping_power,
        CARBON: stopping.carbon_stopping_power,
    }
    return functions[particle](energy)


def _as_energy_array(kinetic_energy) -> np.ndarray:
    """Return ``kinetic_energy`` as float64, or raise if any value is negative or not finite."""
    energy = np.asarray(kinetic_energy, dtype=np.float64)
    bad = ~(energy >= 0.0) | ~np.isfinite(energy)
    if bad.any():
        raise InvalidInputError(
            f"kinetic_energy must be finite and >= 0 MeV; {int(bad.sum())} values are not, "
            f"first one {energy[bad].flat[0]!r}"
        )
    return energy


def _as_particle_array(particle) -> np.ndarray:
    """Return ``particle`` as int64, or raise if a code is not ELECTRON, PROTON or CARBON."""
    codes = np.asarray(particle, dtype=np.int64)
    bad = (codes < ELECTRON) | (codes > CARBON)
    if bad.any():
        raise InvalidInputError(
            f"particle codes must be {ELECTRON} (electron), {PROTON} (proton) or {CARBON} (carbon); "
            f"got {codes[bad].flat[0]!r}"
        )
    return codes


def _check_range(name: str, value: float, low: float, high: float, unit: str) -> float:
    """Return ``value`` as float, or raise if it lies outside [low, high]."""
    number = float(value)
    if not low <= number <= high:
        raise InvalidInputError(f"{name} must lie in [{low}, {high}] {unit}; got {value!r}")
    return number


@dataclass(frozen=True)
class LightModel:
    """Parameter-independent tables of the light model.

    Attributes
    ----------
    energy_grid : numpy.ndarray, shape (n_energy,)
        Kinetic energies in MeV.
    birks_kb_grid : numpy.ndarray, shape (n_kb,)
        Birks constants in g/cm^2/GeV.
    quenched_fraction : numpy.ndarray, shape (3, n_kb, n_energy)
        E_q / T for each particle code (ELECTRON, PROTON, CARBON), kB and T.
    end_stopping_power : numpy.ndarray, shape (3,)
        Stopping power at the last grid energy in MeV cm^2/g, per particle code. It extends
        E_q linearly above the grid.
    cherenkov_table : numpy.ndarray, shape (n_energy,)
        Weighted Cherenkov photons N_C(T) of an electron at cherenkov_factor = 1.
    cherenkov_end_slope : float
        dN_C/dT at the last grid energy in photons/MeV, to extend N_C above the grid.
    """

    energy_grid: np.ndarray
    birks_kb_grid: np.ndarray
    quenched_fraction: np.ndarray
    end_stopping_power: np.ndarray
    cherenkov_table: np.ndarray
    cherenkov_end_slope: float

    @classmethod
    def build(cls, energy_grid: np.ndarray = ENERGY_GRID, birks_kb_grid: np.ndarray = BIRKS_KB_GRID) -> "LightModel":
        """Tabulate the quenching and Cherenkov tables on the given grids.

        ``energy_grid`` (MeV) must be evenly spaced in log T, and ``birks_kb_grid``
        (g/cm^2/GeV) must be increasing.
        """
        start = time.perf_counter()
        energy_grid = np.asarray(energy_grid, dtype=np.float64)
        birks_kb_grid = np.asarray(birks_kb_grid, dtype=np.float64)
        log_steps = np.diff(np.log(energy_grid))
        if energy_grid.size < 2 or not np.allclose(log_steps, log_steps[0], rtol=1e-9, atol=0.0) or log_steps[0] <= 0:
            raise InvalidInputError("energy_grid must hold at least 2 increasing energies, evenly spaced in log T")

        fractions = []
        end_stopping = []
        for particle in _PARTICLES:
            stopping_power = _stopping_power_of(particle, energy_grid)
            if not np.all(stopping_power > 0.0):
                raise RuntimeError(f"stopping power of particle {particle} is not positive on the energy grid")
            fractions.append(quenched_energy_table(stopping_power, energy_grid, birks_kb_grid) / energy_grid)
            end_stopping.append(stopping_power[-1])

        cherenkov = cherenkov_photon_table(energy_grid)
        end_energy = energy_grid[-1:]
        end_slope = cherenkov_photons_per_length(end_energy)[0] / (
            medium.DENSITY * stopping.electron_stopping_power(end_energy)[0]
        )

        model = cls(
            energy_grid=_read_only(energy_grid),
            birks_kb_grid=_read_only(birks_kb_grid),
            quenched_fraction=_read_only(np.stack(fractions)),
            end_stopping_power=_read_only(np.array(end_stopping)),
            cherenkov_table=_read_only(cherenkov),
            cherenkov_end_slope=float(end_slope),
        )
        logger.info("built light-model tables in %.2f s", time.perf_counter() - start)
        return model

    @classmethod
    @functools.lru_cache(maxsize=1)
    def default(cls) -> "LightModel":
        """Return the light model on the default grids, built on the first call and cached."""
        return cls.build()

    def quenched_fraction_at(self, birks_kb: float) -> np.ndarray:
        """Return E_q / T for one Birks constant, shape (3, n_energy), linear in kB between grid values."""
        kb = _check_range("birks_kb", birks_kb, self.birks_kb_grid[0], self.birks_kb_grid[-1], "g/cm^2/GeV")
        upper = int(np.clip(np.searchsorted(self.birks_kb_grid, kb), 1, self.birks_kb_grid.size - 1))
        lower = upper - 1
        weight = (kb - self.birks_kb_grid[lower]) / (self.birks_kb_grid[upper] - self.birks_kb_grid[lower])
        return (1.0 - weight) * self.quenched_fraction[:, lower] + weight * self.quenched_fraction[:, upper]

    def quenched_energy(self, kinetic_energy, particle, birks_kb: float) -> np.ndarray:
        """Return the Birks-quenched energy E_q in MeV.

        Parameters
        ----------
        kinetic_energy : array_like
            Kinetic energy T in MeV, >= 0, any shape.
        particle : array_like of int
            ELECTRON, PROTON or CARBON, broadcastable to ``kinetic_energy``.
        birks_kb : float
            Birks constant in g/cm^2/GeV, within :data:`BIRKS_KB_GRID`.

        Returns
        -------
        numpy.ndarray of float64
            E_q, broadcast shape of ``kinetic_energy`` and ``particle``. Below 10 eV E_q / T
            is held at its 10 eV value. Above 20 MeV E_q grows with the last slope
            1 / (1 + kB S).
        """
        energy, codes, shape = _validated(kinetic_energy, particle)
        quenched = energy * self._interpolate(self.quenched_fraction_at(birks_kb), energy, codes)

        above = energy > self.energy_grid[-1]
        if above.any():
            quenched[above] = self._quenched_energy_above_grid(energy[above], codes[above], float(birks_kb))
        return quenched.reshape(shape)

    def cherenkov_photons(self, kinetic_energy, particle) -> np.ndarray:
        """Return the mean weighted Cherenkov photons at cherenkov_factor = 1.

        Parameters
        ----------
        kinetic_energy : array_like
            Kinetic energy T in MeV, >= 0, any shape.
        particle : array_like of int
            Particle codes, broadcastable to ``kinetic_energy``. Protons and carbon ions
            of these energies are far below the Cherenkov threshold and get 0.

        Returns
        -------
        numpy.ndarray of float64
            Photons that count like scintillation photons at the photo-detection stage,
            broadcast shape.
        """
        energy, codes, shape = _validated(kinetic_energy, particle)
        photons = energy * self._interpolate(self._cherenkov_fraction(), energy, codes)

        above = energy > self.energy_grid[-1]
        if above.any():
            photons[above] = self._cherenkov_photons_above_grid(energy[above], codes[above])
        return photons.reshape(shape)

    def mean_photons(
        self, deposits: Deposits, birks_kb: float, cherenkov_factor: float, light_yield: float
    ) -> np.ndarray:
        """Return the mean photon count of each trigger, LY sum(E_q) + fC sum(N_C).

        Parameters
        ----------
        deposits : Deposits
            Charged-particle deposits grouped into triggers.
        birks_kb : float
            Birks constant in g/cm^2/GeV.
        cherenkov_factor : float
            Cherenkov factor fC in [0, 1].
        light_yield : float
            Scintillation photons per MeV of quenched energy, >= 0.

        Returns
        -------
        numpy.ndarray of float64, shape (deposits.num_triggers,)
            Mean photons that count at the photo-detection stage, 0 for a trigger without deposits.
        """
        factor = _check_range("cherenkov_factor", cherenkov_factor, 0.0, 1.0, "")
        yield_per_mev = _check_range("light_yield", light_yield, 0.0, np.inf, "photons/MeV")
        trigger = np.asarray(deposits.trigger)
        if trigger.size and (trigger.min() < 0 or trigger.max() >= deposits.num_triggers):
            raise InvalidInputError(
                f"deposit trigger indices must lie in [0, {deposits.num_triggers}); "
                f"got range [{trigger.min()}, {trigger.max()}]"
            )
        energy, codes, _ = _validated(deposits.kinetic_energy, deposits.particle)
        if energy.shape != trigger.shape:
            raise InvalidInputError(
                f"deposits have {trigger.size} trigger indices but {energy.size} kinetic energies and particle codes"
            )

        # Photons per MeV of kinetic energy for this parameter point, so one lookup per deposit.
        photons_per_energy = yield_per_mev * self.quenched_fraction_at(birks_kb) + factor * self._cherenkov_fraction()
        photons = energy * self._interpolate(photons_per_energy, energy, codes)

        above = energy > self.energy_grid[-1]
        if above.any():
            photons[above] = yield_per_mev * self._quenched_energy_above_grid(
                energy[above], codes[above], float(birks_kb)
            ) + factor * self._cherenkov_photons_above_grid(energy[above], codes[above])
        return np.bincount(trigger, weights=photons, minlength=deposits.num_triggers)

    def _cherenkov_fraction(self) -> np.ndarray:
        """Return N_C / T per particle code, shape (3, n_energy), zero for protons and carbon."""
        fraction = np.zeros((len(_PARTICLES), self.energy_grid.size))
        fraction[ELECTRON] = self.cherenkov_table / self.energy_grid
        return fraction

    def _interpolate(self, table: np.ndarray, energy: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Interpolate a (3, n_energy) table linearly in log T, row ``codes``, for flat arrays.

        The energy grid is uniform in log T, so the cell index is computed directly rather
        than searched. Energies outside the grid are clipped to its ends.
        """
        log_start = np.log(self.energy_grid[0])
        log_step = np.log(self.energy_grid[-1] / self.energy_grid[0]) / (self.energy_grid.size - 1)
        position = (np.log(np.clip(energy, self.energy_grid[0], self.energy_grid[-1])) - log_start) / log_step
        cell = np.minimum(position.astype(np.int64), self.energy_grid.size - 2)
        fraction = position - cell

        flat_table = table.ravel()
        flat_index = cell + codes * self.energy_grid.size
        return flat_table[flat_index] * (1.0 - fraction) + flat_table[flat_index + 1] * fraction

    def _quenched_energy_above_grid(self, energy: np.ndarray, codes: np.ndarray, birks_kb: float) -> np.ndarray:
        """Return E_q above the last grid energy, extended with the slope 1 / (1 + kB S) there."""
        end_energy = self.energy_grid[-1]
        end_fraction = self.quenched_fraction_at(birks_kb)[codes, -1]
        end_slope = 1.0 / (1.0 + birks_kb * 1e-3 * self.end_stopping_power[codes])
        return end_energy * end_fraction + (energy - end_energy) * end_slope

    def _cherenkov_photons_above_grid(self, energy: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Return N_C above the last grid energy, extended with the slope dN_C/dT there."""
        photons = self.cherenkov_table[-1] + (energy - self.energy_grid[-1]) * self.cherenkov_end_slope
        return np.where(codes == ELECTRON, photons, 0.0)


def _validated(kinetic_energy, particle) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Return validated kinetic energies (float64) and particle codes (int64), flattened, and their broadcast shape."""
    energy, codes = np.broadcast_arrays(_as_energy_array(kinetic_energy), _as_particle_array(particle))
    return energy.ravel(), codes.ravel(), energy.shape


def _read_only(array: np.ndarray) -> np.ndarray:
    """Return ``array`` flagged read-only, so the cached model cannot be changed by a caller."""
    array = np.ascontiguousarray(array, dtype=np.float64)
    array.flags.writeable = False
    return array
