"""Gamma-ray transport in the liquid scintillator.

Gammas start at a point inside the LS sphere and are followed in 3-D, one
interaction step at a time, for all gammas at once. Three processes are
simulated:

* Compton scattering on free electrons with the Klein-Nishina cross-section
  and exact angular sampling. Every Compton electron is one deposit.
* Photoelectric absorption. The gamma energy goes into one electron deposit
  because the K-shell binding energies of H and C (13.6 eV, 284 eV) are below
  the 1 keV tracking cut.
* Pair production (nuclear and electron field). The kinetic energy
  ``E - 2 m_e c^2`` is split between the electron and the positron, and the
  positron annihilates at rest into two back-to-back 511 keV gammas, which are
  transported too.

Rayleigh scattering is neglected: it deflects a gamma without depositing energy,
and in carbon it is 0.8 % of the total attenuation at 200 keV and 0.2 % at
500 keV (XCOM). Electrons
and positrons are not transported: each deposits its kinetic energy locally,
and their bremsstrahlung and annihilation in flight are neglected.

Photoelectric and pair cross-sections of H and C are the NIST XCOM tables
(M. J. Berger, J. H. Hubbell et al., "XCOM: Photon Cross Sections Database",
NIST Standard Reference Database 8, version 3.1, element files for Z = 1 and
Z = 6), interpolated log-log in energy. O and N (0.04 % of the LS mass) add
to the electron density of Compton scattering but not to the photoelectric
and pair cross-sections.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import numpy as np

from neuromct_tf.sim import medium

logger = logging.getLogger(__name__)

#: Electron rest energy in MeV (CODATA 2018).
ELECTRON_MASS = 0.51099895
#: Classical electron radius in cm (CODATA 2018).
CLASSICAL_ELECTRON_RADIUS = 2.8179403262e-13
#: Gammas below this energy (MeV) are absorbed on the spot; it is the lowest energy of the XCOM tables.
ENERGY_CUT = 1.0e-3
#: Highest gamma energy (MeV) that the transport tables cover.
MAX_ENERGY = 20.0

#: Interaction code of a Compton-scattering deposit.
COMPTON = 0
#: Interaction code of a photo-absorption deposit, including gammas that fall below :data:`ENERGY_CUT`.
PHOTOELECTRIC = 1
#: Interaction code of the electron or positron of a pair production.
PAIR = 2

_BARN = 1.0e-24  # cm^2

# NIST XCOM v3.1 photon cross-sections in barn/atom (files MDATX3.001 and MDATX3.006):
# photoelectric absorption and pair production (nuclear plus electron field),
# on the XCOM energy grid in MeV from 1 keV to 20 MeV.
_XCOM_ENERGY = np.array([
    1.0e-3, 1.5e-3, 2.0e-3, 3.0e-3, 4.0e-3, 5.0e-3, 6.0e-3, 8.0e-3, 1.0e-2, 1.5e-2,
    2.0e-2, 3.0e-2, 4.0e-2, 5.0e-2, 6.0e-2, 8.0e-2, 0.1, 0.15, 0.2, 0.3,
    0.4, 0.5, 0.6, 0.8, 1.0, 1.022, 1.25, 1.5, 2.0, 2.044,
    3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0,
    13.0, 14.0, 15.0, 16.0, 18.0, 20.0,
])
_XCOM_PHOTO = {
    "H": np.array([
        1.141e1, 2.932e0, 1.111e0, 2.806e-1, 1.053e-1, 4.907e-2, 2.627e-2, 9.816e-3, 4.558e-3, 1.128e-3,
        4.182e-4, 1.032e-4, 3.823e-5, 1.771e-5, 9.455e-6, 3.523e-6, 1.644e-6, 4.176e-7, 1.611e-7, 4.414e-8,
        1.858e-8, 9.927e-9, 6.158e-9, 3.118e-9, 1.961e-9, 1.880e-9, 1.304e-9, 9.732e-10, 6.201e-10, 6.004e-10,
        3.524e-10, 2.444e-10, 1.866e-10, 1.508e-10, 1.264e-10, 1.088e-10, 9.546e-11, 8.503e-11, 7.665e-11, 6.977e-11,
        6.401e-11, 5.914e-11, 5.495e-11, 5.131e-11, 4.531e-11, 4.057e-11,
    ]),
    "C": np.array([
        4.407e4, 1.395e4, 6.017e3, 1.788e3, 7.427e2, 3.721e2, 2.103e2, 8.459e1, 4.140e1, 1.114e1,
        4.341e0, 1.138e0, 4.374e-1, 2.079e-1, 1.131e-1, 4.327e-2, 2.057e-2, 5.397e-3, 2.121e-3, 5.944e-4,
        2.536e-4, 1.364e-4, 8.482e-5, 4.277e-5, 2.659e-5, 2.452e-5, 1.665e-5, 1.209e-5, 7.631e-6, 7.384e-6,
        4.282e-6, 2.947e-6, 2.239e-6, 1.802e-6, 1.507e-6, 1.294e-6, 1.134e-6, 1.009e-6, 9.081e-7, 8.258e-7,
        7.571e-7, 6.989e-7, 6.490e-7, 6.058e-7, 5.345e-7, 4.782e-7,
    ]),
}
# Pair production, nuclear field plus electron field (triplet), barn/atom; zero up to 1.022 MeV.
_XCOM_PAIR = {
    "H": np.array([0.0] * 26 + [
        7.805e-6, 4.385e-5, 1.758e-4, 1.895e-4,
        5.048e-4 + 4.035e-5, 8.202e-4 + 1.647e-4, 1.102e-3 + 3.283e-4, 1.355e-3 + 5.042e-4,
        1.580e-3 + 6.798e-4, 1.784e-3 + 8.503e-4, 1.970e-3 + 1.014e-3, 2.138e-3 + 1.170e-3,
        2.292e-3 + 1.318e-3, 2.433e-3 + 1.458e-3, 2.565e-3 + 1.590e-3, 2.688e-3 + 1.716e-3,
        2.803e-3 + 1.836e-3, 2.912e-3 + 1.951e-3, 3.112e-3 + 2.164e-3, 3.292e-3 + 2.359e-3,
    ]),
    "C": np.array([0.0] * 26 + [
        2.870e-4, 1.594e-3, 6.356e-3, 6.852e-3,
        1.820e-2 + 2.421e-4, 2.955e-2 + 9.885e-4, 3.966e-2 + 1.970e-3, 4.876e-2 + 3.025e-3,
        5.687e-2 + 4.079e-3, 6.418e-2 + 5.102e-3, 7.082e-2 + 6.083e-3, 7.686e-2 + 7.018e-3,
        8.235e-2 + 7.906e-3, 8.739e-2 + 8.745e-3, 9.209e-2 + 9.538e-3, 9.645e-2 + 1.030e-2,
        1.005e-1 + 1.102e-2, 1.044e-1 + 1.170e-2, 1.114e-1 + 1.298e-2, 1.177e-1 + 1.415e-2,
    ]),
}


@dataclass(frozen=True)
class MassAttenuation:
    """Mass attenuation coefficients of the LS in cm^2/g, each with the shape of the input energy."""

    compton: np.ndarray
    photoelectric: np.ndarray
    pair: np.ndarray
    total: np.ndarray


@dataclass(frozen=True)
class GammaDeposits:
    """Electron and positron deposits made by transported gammas.

    Attributes
    ----------
    trigger : numpy.ndarray of int64, shape (num_deposits,)
        Trigger index copied from the gamma that made the deposit.
    kinetic_energy : numpy.ndarray of float64, shape (num_deposits,)
        Kinetic energy of the electron or positron in MeV.
    process : numpy.ndarray of int8, shape (num_deposits,)
        :data:`COMPTON`, :data:`PHOTOELECTRIC` or :data:`PAIR`.

    Deposits are grouped by interaction step, not sorted by trigger.
    """

    trigger: np.ndarray
    kinetic_energy: np.ndarray
    process: np.ndarray


def klein_nishina_cross_section(energy) -> np.ndarray:
    """Return the Klein-Nishina total cross-section per free electron in cm^2.

    The closed form is integrated from dsigma/dOmega (Klein and Nishina,
    Z. Phys. 52 (1929) 853; written as in R. D. Evans, "The Atomic Nucleus",
    McGraw-Hill 1955, chapter 23, eq. 2.1).

    Parameters
    ----------
    energy : array_like of float, any shape
        Gamma energy in MeV, > 0.
    """
    k = np.asarray(energy, dtype=np.float64) / ELECTRON_MASS
    one_2k = 1.0 + 2.0 * k
    log_term = np.log(one_2k)
    first = (1.0 + k) / k**2 * (2.0 * (1.0 + k) / one_2k - log_term / k)
    second = log_term / (2.0 * k) - (1.0 + 3.0 * k) / one_2k**2
    return 2.0 * np.pi * CLASSICAL_ELECTRON_RADIUS**2 * (first + second)


def _xcom_loglog(energy: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Interpolate an XCOM table log-log in energy; zero entries (below threshold) stay zero."""
    positive = table > 0.0
    grid = np.log(_XCOM_ENERGY[positive])
    values = np.log(table[positive])
    log_energy = np.log(np.clip(energy, _XCOM_ENERGY[0], _XCOM_ENERGY[-1]))
    result = np.exp(np.interp(log_energy, grid, values))
    threshold = _XCOM_ENERGY[np.argmax(positive)]
    below = energy < threshold
    if np.any(below):
        # Between the last zero grid point (1.022 MeV) and the first non-zero one,
        # interpolate linearly from zero as XCOM itself does near threshold.
        last_zero = _XCOM_ENERGY[np.argmax(positive) - 1] if np.argmax(positive) > 0 else 0.0
        ramp = np.clip((energy - last_zero) / (threshold - last_zero), 0.0, 1.0)
        result = np.where(below, ramp * table[positive][0], result)
    return result


def mass_attenuation(energy) -> MassAttenuation:
    """Compute the mass attenuation coefficients of the LS in cm^2/g.

    Compton: Klein-Nishina cross-section per electron times the electrons per
    gram of :mod:`neuromct_tf.sim.medium`. Photoelectric and pair: XCOM
    cross-sections of H and C times their atoms per gram.

    Parameters
    ----------
    energy : array_like of float, any shape
        Gamma energy in MeV, within [1 keV, 20 MeV] for the tabulated processes;
        values outside are clamped to the table ends for photoelectric and pair.

    Returns
    -------
    MassAttenuation
        Arrays of the shape of ``energy``.
    """
    energy = np.asarray(energy, dtype=np.float64)
    compton = klein_nishina_cross_section(energy) * medium.electrons_per_gram()
    photo = np.zeros_like(energy)
    pair = np.zeros_like(energy)
    for symbol in ("H", "C"):
        atoms = medium.atoms_per_gram(symbol) * _BARN
        photo = photo + atoms * _xcom_loglog(energy, _XCOM_PHOTO[symbol])
        pair = pair + atoms * _xcom_loglog(energy, _XCOM_PAIR[symbol])
    return MassAttenuation(compton=compton, photoelectric=photo, pair=pair, total=compton + photo + pair)


def sample_klein_nishina(energy, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sample Compton scatterings from the Klein-Nishina cross-section.

    Method: Butcher and Messel, Nucl. Phys. 20 (1960) 15, as described in the
    Geant4 Physics Reference Manual (section "Compton scattering"). With
    ``eps = E'/E`` in ``[eps0, 1]``, ``eps0 = 1/(1 + 2k)`` and ``k = E/m_e c^2``,
    the density ``(1/eps + eps) * (1 - eps sin^2(theta) / (1 + eps^2))`` is
    sampled as a mixture of ``1/eps`` (weight ``ln(1/eps0)``) and ``eps``
    (weight ``(1 - eps0^2)/2``), followed by rejection on the second factor,
    which is at least 1/2. All pending gammas are drawn together each round.

    Parameters
    ----------
    energy : array_like of float, shape (n,)
        Gamma energy in MeV, > 0.
    rng : numpy.random.Generator

    Returns
    -------
    scattered_energy : numpy.ndarray of float64, shape (n,)
        Energy of the scattered gamma in MeV; the Compton electron gets the rest.
    cos_theta : numpy.ndarray of float64, shape (n,)
        Cosine of the gamma scattering angle.
    """
    energy = np.asarray(energy, dtype=np.float64).ravel()
    k = energy / ELECTRON_MASS
    eps0 = 1.0 / (1.0 + 2.0 * k)
    weight_inverse = -np.log(eps0)
    weight_linear = 0.5 * (1.0 - eps0**2)
    eps = np.empty_like(energy)
    pending = np.arange(energy.size)
    while pending.size:
        e0 = eps0[pending]
        u = rng.random((3, pending.size))
        from_inverse = u[0] * (weight_inverse[pending] + weight_linear[pending]) < weight_inverse[pending]
        trial = np.where(from_inverse, e0 ** u[1], np.sqrt(e0**2 + (1.0 - e0**2) * u[1]))
        t = (1.0 - trial) / (k[pending] * trial)
        sin2 = t * (2.0 - t)
        accepted = u[2] <= 1.0 - trial * sin2 / (1.0 + trial**2)
        eps[pending[accepted]] = trial[accepted]
        pending = pending[~accepted]
    cos_theta = 1.0 - (1.0 - eps) / (k * eps)
    return energy * eps, np.clip(cos_theta, -1.0, 1.0)


def sample_azimuth(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Return (cos phi, sin phi) of ``count`` azimuths uniform in [0, 2 pi), each shape (count,).

    This avoids trigonometric functions, which cost about twice as much. A
    point (a, b) uniform in the unit disk has a uniform polar angle, and so
    has twice that angle. Its cosine and sine are (a^2 - b^2) / r^2 and
    2 a b / r^2 (J. von Neumann's method).
    """
    cos_phi = np.empty(count)
    sin_phi = np.empty(count)
    filled = 0
    while filled < count:
        missing = count - filled
        point = 2.0 * rng.random((2, int(1.3 * missing) + 16)) - 1.0
        r2 = point[0] * point[0] + point[1] * point[1]
        accepted = np.flatnonzero((r2 <= 1.0) & (r2 > 0.0))[:missing]
        a, b, r2 = point[0, accepted], point[1, accepted], r2[accepted]
        cos_phi[filled : filled + accepted.size] = (a * a - b * b) / r2
        sin_phi[filled : filled + accepted.size] = 2.0 * a * b / r2
        filled += accepted.size
    return cos_phi, sin_phi


def isotropic_directions(count: int, rng: np.random.Generator) -> np.ndarray:
    """Return ``count`` unit vectors uniform on the sphere, shape (count, 3)."""
    cos_theta = 2.0 * rng.random(count) - 1.0
    cos_phi, sin_phi = sample_azimuth(count, rng)
    sin_theta = np.sqrt(1.0 - cos_theta**2)
    return np.stack([sin_theta * cos_phi, sin_theta * sin_phi, cos_theta], axis=1)


def rotate_directions(direction: np.ndarray, cos_theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Turn unit vectors by polar angle ``arccos(cos_theta)`` and a uniform azimuth.

    Parameters
    ----------
    direction : numpy.ndarray of float64, shape (n, 3)
        Unit vectors before scattering.
    cos_theta : numpy.ndarray of float64, shape (n,)
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray of float64, shape (n, 3)
    """
    u, v, w = rotate_direction_cosines(direction[:, 0], direction[:, 1], direction[:, 2], cos_theta, rng)
    return np.stack([u, v, w], axis=1)


def rotate_direction_cosines(u, v, w, cos_theta, rng):
    """Rotate direction cosines (u, v, w), each shape (n,), and return the new ones.

    Standard rotation formula of Monte Carlo transport codes (for example
    I. Lux and L. Koblinger, "Monte Carlo Particle Transport Methods", CRC
    Press 1991), with the special case of a direction along the z axis. It
    keeps unit length to round-off, so the vectors are not renormalised.
    """
    cos_phi, sin_phi = sample_azimuth(cos_theta.size, rng)
    sin_theta = np.sqrt(np.maximum(1.0 - cos_theta * cos_theta, 0.0))
    perp = np.sqrt(np.maximum(1.0 - w * w, 0.0))
    near_axis = perp < 1.0e-8
    factor = sin_theta / np.where(near_axis, 1.0, perp)
    a = w * cos_phi
    new_u = u * cos_theta + factor * (u * a - v * sin_phi)
    new_v = v * cos_theta + factor * (v * a + u * sin_phi)
    new_w = w * cos_theta - sin_theta * perp * cos_phi
    if np.any(near_axis):
        new_u = np.where(near_axis, sin_theta * cos_phi, new_u)
        new_v = np.where(near_axis, sin_theta * sin_phi, new_v)
        new_w = np.where(near_axis, np.sign(w) * cos_theta, new_w)
    return new_u, new_v, new_w


@dataclass(frozen=True)
class _AttenuationTable:
    """Linear attenuation on a uniform log-energy grid, for fast lookup during transport."""

    log_min: float
    inverse_step: float
    total: np.ndarray  # 1/cm
    compton_fraction: np.ndarray
    compton_or_photo_fraction: np.ndarray

    def lookup(self, energy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        position = (np.log(energy) - self.log_min) * self.inverse_step
        np.clip(position, 0.0, self.total.size - 1.000001, out=position)
        index = position.astype(np.intp)
        weight = position - index
        values = []
        for table in (self.total, self.compton_fraction, self.compton_or_photo_fraction):
            low = table[index]
            values.append(low + weight * (table[index + 1] - low))
        return values[0], values[1], values[2]


@functools.lru_cache(maxsize=1)
def _attenuation_table(num_points: int = 8192) -> _AttenuationTable:
    """Tabulate the LS attenuation on ``num_points`` log-spaced energies between the cut and 20 MeV."""
    log_min, log_max = np.log(ENERGY_CUT), np.log(MAX_ENERGY)
    energy = np.exp(np.linspace(log_min, log_max, num_points))
    mu = mass_attenuation(energy)
    return _AttenuationTable(
        log_min=log_min,
        inverse_step=(num_points - 1) / (log_max - log_min),
        total=mu.total * medium.DENSITY,
        compton_fraction=mu.compton / mu.total,
        compton_or_photo_fraction=(mu.compton + mu.photoelectric) / mu.total,
    )


class _DepositList:
    """Collects deposit arrays step by step and concatenates them once at the end."""

    def __init__(self):
        self.trigger, self.energy, self.process = [], [], []

    def add(self, trigger: np.ndarray, energy: np.ndarray, process: int) -> None:
        if trigger.size:
            self.trigger.append(trigger)
            self.energy.append(energy)
            self.process.append(np.full(trigger.size, process, dtype=np.int8))

    def result(self) -> GammaDeposits:
        if not self.trigger:
            return GammaDeposits(np.zeros(0, np.int64), np.zeros(0, np.float64), np.zeros(0, np.int8))
        return GammaDeposits(
            trigger=np.concatenate(self.trigger).astype(np.int64, copy=False),
            kinetic_energy=np.concatenate(self.energy),
            process=np.concatenate(self.process),
        )


def transport_gammas(
    energy,
    trigger,
    rng: np.random.Generator,
    radius: float = medium.SPHERE_RADIUS,
    position=None,
    direction=None,
) -> GammaDeposits:
    """Transport gammas through the LS sphere and return their electron deposits.

    Each step moves every live gamma by a free path drawn from the total
    attenuation, drops gammas that leave the sphere, and samples the process
    in proportion to the partial attenuations.

    Parameters
    ----------
    energy : array_like of float, shape (n,)
        Initial gamma energies in MeV, at most 20 MeV.
    trigger : array_like of int, shape (n,)
        Trigger index of each gamma; its deposits and those of its secondaries carry it.
    rng : numpy.random.Generator
    radius : float
        Radius of the LS sphere in cm; the sphere is centred at the origin.
    position : array_like of float, shape (n, 3), optional
        Start points in cm; default the centre.
    direction : array_like of float, shape (n, 3), optional
        Unit start directions; default isotropic.

    Returns
    -------
    GammaDeposits
        All electron and positron deposits, energy in MeV.
    """
    energy = np.asarray(energy, dtype=np.float64).ravel().copy()
    trigger = np.asarray(trigger, dtype=np.int64).ravel()
    if energy.shape != trigger.shape:
        raise ValueError(f"energy and trigger must have the same length, got {energy.size} and {trigger.size}")
    if np.any(energy > MAX_ENERGY):
        raise ValueError(f"gamma energies above {MAX_ENERGY} MeV are not tabulated, max is {energy.max()} MeV")
    position = np.zeros((energy.size, 3)) if position is None else np.array(position, dtype=np.float64)
    direction = isotropic_directions(energy.size, rng) if direction is None else np.array(direction, np.float64)

    table = _attenuation_table()
    deposits = _DepositList()
    below_cut = energy < ENERGY_CUT
    deposits.add(trigger[below_cut], energy[below_cut], PHOTOELECTRIC)
    live = ~below_cut
    state = (energy[live], trigger[live], *position[live].T, *direction[live].T)
    radius2 = radius * radius
    num_steps = 0
    while state[0].size:
        num_steps += 1
        state = _transport_step(state, table, radius2, rng, deposits)
    logger.debug("gamma transport finished after %d steps", num_steps)
    return deposits.result()


def _transport_step(state, table: _AttenuationTable, radius2: float, rng, deposits: _DepositList):
    """Move every gamma of ``state`` to its next interaction and return the surviving gammas.

    ``state`` is (energy, trigger, x, y, z, u, v, w), each of shape (n,).
    """
    energy, trigger, x, y, z, u, v, w = state
    mu, compton_fraction, compton_or_photo = table.lookup(energy)
    path = -np.log1p(-rng.random(energy.size)) / mu
    x = x + u * path
    y = y + v * path
    z = z + w * path
    inside = x * x + y * y + z * z <= radius2
    choice = rng.random(energy.size)
    compton = np.flatnonzero(inside & (choice < compton_fraction))
    photo = inside & (choice >= compton_fraction) & (choice < compton_or_photo)
    pair = np.flatnonzero(inside & (choice >= compton_or_photo))

    deposits.add(trigger[photo], energy[photo], PHOTOELECTRIC)
    annihilation = _pair_production(energy[pair], trigger[pair], x[pair], y[pair], z[pair], rng, deposits)

    scattered, cos_theta = sample_klein_nishina(energy[compton], rng)
    compton_trigger = trigger[compton]
    deposits.add(compton_trigger, energy[compton] - scattered, COMPTON)
    absorbed = scattered < ENERGY_CUT
    if np.any(absorbed):
        deposits.add(compton_trigger[absorbed], scattered[absorbed], PHOTOELECTRIC)
        keep = ~absorbed
        compton, scattered, cos_theta, compton_trigger = compton[keep], scattered[keep], cos_theta[keep], compton_trigger[keep]
    new_u, new_v, new_w = rotate_direction_cosines(u[compton], v[compton], w[compton], cos_theta, rng)
    survivors = (scattered, compton_trigger, x[compton], y[compton], z[compton], new_u, new_v, new_w)
    if annihilation[0].size == 0:
        return survivors
    return tuple(np.concatenate([old, new]) for old, new in zip(survivors, annihilation))


def _pair_production(energy, trigger, x, y, z, rng, deposits: _DepositList):
    """Record the pair deposits and return the two annihilation gammas of each positron.

    The kinetic energy ``E - 2 m_e c^2`` is shared with an electron fraction
    drawn uniformly in [0, 1], a simple model in place of the Bethe-Heitler
    distribution. The sum is exact; the split only matters through the
    non-linear light of each deposit. The triplet electron is not produced
    separately, its share stays with the pair. The positron stops where it
    was made and annihilates at rest.

    Returns the annihilation gammas as (energy, trigger, x, y, z, u, v, w), each of shape (2 n,).
    """
    available = energy - 2.0 * ELECTRON_MASS
    electron = available * rng.random(energy.size)
    deposits.add(trigger, electron, PAIR)
    deposits.add(trigger, available - electron, PAIR)
    first = isotropic_directions(energy.size, rng)
    both = np.concatenate([first, -first])
    return (
        np.full(2 * energy.size, ELECTRON_MASS),
        np.concatenate([trigger, trigger]),
        np.concatenate([x, x]),
        np.concatenate([y, y]),
        np.concatenate([z, z]),
        both[:, 0],
        both[:, 1],
        both[:, 2],
    )
