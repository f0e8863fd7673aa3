"""Neutron slowing-down and capture in the liquid scintillator.

Fast neutrons scatter on hydrogen and carbon until their energy falls below
:data:`ENERGY_CUT`; every collision leaves a recoil nucleus that deposits its
kinetic energy locally (a :data:`~neuromct_tf.sim.deposits.PROTON` or
:data:`~neuromct_tf.sim.deposits.CARBON` deposit). Below the cut no recoils
are produced. The remaining energy is below 1 keV, and a proton recoil of at
most 1 keV gives far less visible energy than that, because Birks quenching
of protons is strongest at the lowest energies. The neutron is then
captured at the point of its last collision; the thermal diffusion length in
the LS (a few cm) is neglected next to the 17.7 m sphere radius.

Processes:

* n-p elastic scattering, isotropic in the centre-of-mass (CM) frame, which
  is accurate below about 20 MeV (S-wave dominance). Cross-section from
  effective-range theory with the singlet and triplet parameters of
  :data:`NP_SCATTERING_LENGTHS`.
* n-12C elastic scattering, also isotropic in the CM frame. Above about
  1 MeV the true angular distribution is forward-peaked, so this
  overestimates the mean carbon recoil energy; carbon recoils are heavily
  quenched and give almost no light, so the effect on the spectra is small.
* 12C(n,n'gamma) to the 4.439 MeV state above its 4.813 MeV threshold; the
  4.439 MeV gamma is returned for transport in the prompt trigger.
* 12C(n,alpha)9Be (threshold 6.18 MeV) is neglected. Its cross-section is a
  few percent of the total above threshold, so it affects well under 1 % of
  AmBe neutrons, and its alpha and 9Be deposits would be quenched to a
  visible energy of a few hundred keV at most.
* Radiative capture on H (2.2232 MeV gamma) or C (4.9453 MeV gamma), with the
  nucleus drawn from the thermal capture cross-sections; see
  :func:`carbon_capture_fraction`. The part of the 12C captures that cascades
  through excited 13C levels is simplified to the single ground-state line.
  Capture on 14N, mostly 14N(n,p)14C with 1.86 b (Mughabghab 2016), is
  neglected: with 0.02 % nitrogen by mass it is 0.07 % of captures.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from neuromct_tf.sim import medium
from neuromct_tf.sim.deposits import CARBON, PROTON
from neuromct_tf.sim.gammas import isotropic_directions, rotate_direction_cosines

logger = logging.getLogger(__name__)

#: Neutron energy (MeV) below which collisions produce no more recoil deposits.
ENERGY_CUT = 1.0e-3
#: Neutron, proton and 12C masses in MeV (CODATA 2018; 12C from the 2020 atomic mass evaluation,
#: 12 u minus six electron masses).
NEUTRON_MASS = 939.56542052
PROTON_MASS = 938.27208816
CARBON12_MASS = 11174.862
#: Target-to-neutron mass ratios used in the two-body kinematics.
MASS_RATIO_H = PROTON_MASS / NEUTRON_MASS
MASS_RATIO_C = CARBON12_MASS / NEUTRON_MASS

#: n-p effective-range parameters in fm: (triplet a, triplet r0, singlet a, singlet r0), the
#: standard values quoted in K. S. Krane, "Introductory Nuclear Physics", Wiley 1988, section 4.4.
NP_SCATTERING_LENGTHS = (5.42, 1.75, -23.75, 2.7)
#: hbar c in MeV fm (CODATA 2018).
HBAR_C = 197.3269804

#: Excitation energy of the first excited state of 12C in MeV (ENSDF).
CARBON_4439_ENERGY = 4.43891
#: Threshold of 12C(n,n')12C(4.439) in the lab frame, E_x (A + 1) / A, in MeV.
CARBON_INELASTIC_THRESHOLD = CARBON_4439_ENERGY * (MASS_RATIO_C + 1.0) / MASS_RATIO_C

# n-12C elastic cross-section in barn on a log-energy grid in MeV. The thermal
# value 4.746 b is the Mughabghab (2016) evaluation; the rest is a smooth
# curve through the evaluated data with resonances averaged out.
# NOTE: these points are approximate (about 15 %), not a point-by-point copy of
# ENDF/B-VIII.0; they set the share of carbon collisions and so the number of
# proton recoils only weakly, because hydrogen dominates the slowing-down.
_CARBON_ELASTIC_ENERGY = np.array([1e-11, 1e-2, 0.1, 0.3, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 14.0, 20.0])
_CARBON_ELASTIC_BARN = np.array([4.746, 4.70, 4.50, 4.0, 3.6, 2.6, 2.1, 1.7, 1.1, 1.3, 1.1, 0.95, 0.85, 0.80, 0.80, 0.70])
# 12C(n,n')12C(4.439) cross-section in barn, zero at threshold.
# NOTE: approximate shape (rise to about 0.4 b between 6 and 10 MeV, 0.2 b at
# 14 MeV), like the elastic table not copied from an evaluation.
_CARBON_INELASTIC_ENERGY = np.array([CARBON_INELASTIC_THRESHOLD, 5.0, 6.0, 8.0, 10.0, 14.0, 20.0])
_CARBON_INELASTIC_BARN = np.array([0.0, 0.15, 0.35, 0.40, 0.40, 0.21, 0.15])

#: Thermal (2200 m/s) capture cross-sections in barn. 1H: 0.3326 b in the Mughabghab (2016)
#: evaluation, rounded. Natural C: 3.5 mb (W. V. Prestwich et al. 1981, EXFOR 10997); other
#: compilations give up to 3.83 mb (Firestone 2022), which would raise the carbon share from
#: 0.63 % to 0.69 %. Both values as listed in A. J. Koning's "resonancetables" compilation.
CAPTURE_CROSS_SECTION_H = 0.332
CAPTURE_CROSS_SECTION_C = 0.0035
#: Capture gamma energies in MeV: 1H(n,gamma)2H and 12C(n,gamma)13C to the ground state
#: (ENSDF adopted levels of 2H and 13C; the recoil correction is included).
CAPTURE_GAMMA_H = 2.2232
CAPTURE_GAMMA_C = 4.9453
#: Thermal neutron speed in cm/s.
THERMAL_SPEED = 2.2e5

#: Codes of :attr:`NeutronResult.capture_nucleus`.
NOT_CAPTURED = 0
CAPTURED_ON_H = 1
CAPTURED_ON_C = 6

_BARN = 1.0e-24


@dataclass(frozen=True)
class NeutronResult:
    """Recoils, prompt gammas and capture of transported neutrons.

    Attributes
    ----------
    recoil_neutron : numpy.ndarray of int64, shape (num_recoils,)
        Index of the neutron (position in the input) that made each recoil.
    recoil_energy : numpy.ndarray of float64, shape (num_recoils,)
        Recoil kinetic energy in MeV.
    recoil_particle : numpy.ndarray of int8, shape (num_recoils,)
        :data:`~neuromct_tf.sim.deposits.PROTON` or :data:`~neuromct_tf.sim.deposits.CARBON`.
    gamma_neutron : numpy.ndarray of int64, shape (num_gammas,)
        Neutron index of each 4.439 MeV gamma from 12C(n,n').
    gamma_energy : numpy.ndarray of float64, shape (num_gammas,)
        Gamma energy in MeV.
    gamma_position : numpy.ndarray of float64, shape (num_gammas, 3)
        Emission point in cm.
    capture_nucleus : numpy.ndarray of int8, shape (num_neutrons,)
        :data:`CAPTURED_ON_H`, :data:`CAPTURED_ON_C` or :data:`NOT_CAPTURED` (left the sphere).
    capture_gamma_energy : numpy.ndarray of float64, shape (num_neutrons,)
        Capture gamma energy in MeV, 0 if not captured.
    capture_position : numpy.ndarray of float64, shape (num_neutrons, 3)
        Capture point in cm.
    capture_time : numpy.ndarray of float64, shape (num_neutrons,)
        Time from emission to capture in microseconds (thermal diffusion only,
        the slowing-down time of a few microseconds is neglected).
    """

    recoil_neutron: np.ndarray
    recoil_energy: np.ndarray
    recoil_particle: np.ndarray
    gamma_neutron: np.ndarray
    gamma_energy: np.ndarray
    gamma_position: np.ndarray
    capture_nucleus: np.ndarray
    capture_gamma_energy: np.ndarray
    capture_position: np.ndarray
    capture_time: np.ndarray


def np_elastic_cross_section(energy) -> np.ndarray:
    """Return the n-p elastic cross-section in barn from effective-range theory.

    ``sigma = 3/4 * 4 pi / (k^2 + (1/a_t - r_t k^2 / 2)^2) + 1/4 * 4 pi / (k^2 + (1/a_s - r_s k^2 / 2)^2)``
    with the CM wave number ``k^2 = m_n E / (2 hbar^2)`` (H. A. Bethe, Phys. Rev.
    76 (1949) 38). With :data:`NP_SCATTERING_LENGTHS` it gives 20.5 b at zero
    energy, 4.26 b at 1 MeV, 0.94 b at 10 MeV and 0.47 b at 20 MeV.

    Parameters
    ----------
    energy : array_like of float, any shape
        Neutron lab kinetic energy in MeV.
    """
    a_t, r_t, a_s, r_s = NP_SCATTERING_LENGTHS
    k2 = NEUTRON_MASS * np.asarray(energy, dtype=np.float64) / (2.0 * HBAR_C**2)
    triplet = 3.0 * np.pi / (k2 + (1.0 / a_t - 0.5 * r_t * k2) ** 2)
    singlet = np.pi / (k2 + (1.0 / a_s - 0.5 * r_s * k2) ** 2)
    return (triplet + singlet) * 1.0e-2  # fm^2 to barn


def carbon_elastic_cross_section(energy) -> np.ndarray:
    """Return the n-12C elastic cross-section in barn, log-log interpolated (see the table note)."""
    log_energy = np.log(np.clip(energy, _CARBON_ELASTIC_ENERGY[0], _CARBON_ELASTIC_ENERGY[-1]))
    return np.exp(np.interp(log_energy, np.log(_CARBON_ELASTIC_ENERGY), np.log(_CARBON_ELASTIC_BARN)))


def carbon_inelastic_cross_section(energy) -> np.ndarray:
    """Return the 12C(n,n')12C(4.439) cross-section in barn, zero below threshold."""
    return np.interp(energy, _CARBON_INELASTIC_ENERGY, _CARBON_INELASTIC_BARN, left=0.0, right=_CARBON_INELASTIC_BARN[-1])


def carbon_capture_fraction() -> float:
    """Return the fraction of thermal captures on carbon.

    ``n_C sigma_C / (n_H sigma_H + n_C sigma_C)`` with the atom densities of
    :mod:`neuromct_tf.sim.medium`; for the JUNO LS it is 0.632 %.
    """
    rate_h = medium.atoms_per_gram("H") * CAPTURE_CROSS_SECTION_H
    rate_c = medium.atoms_per_gram("C") * CAPTURE_CROSS_SECTION_C
    return rate_c / (rate_h + rate_c)


def capture_time_constant() -> float:
    """Return the mean thermal capture time in microseconds, 1 / (v Sigma_capture), about 217 us."""
    sigma = medium.DENSITY * _BARN * (
        medium.atoms_per_gram("H") * CAPTURE_CROSS_SECTION_H + medium.atoms_per_gram("C") * CAPTURE_CROSS_SECTION_C
    )
    return 1.0e6 / (THERMAL_SPEED * sigma)


def _scatter(energy, mass_ratio, excitation, rng):
    """Sample a two-body scattering, isotropic in the CM frame.

    Non-relativistic kinematics in units of sqrt(energy): the CM moves with
    ``a = sqrt(E) / (A + 1)`` and the outgoing neutron moves in the CM with
    ``b = sqrt(A / (A + 1) * (A E / (A + 1) - E_x))``; the lab energy is
    ``a^2 + b^2 + 2 a b mu`` and the lab scattering cosine ``(a + b mu) / sqrt(E')``,
    with ``mu`` the CM cosine.

    Returns the outgoing neutron energy, the recoil kinetic energy and the lab cosine.
    """
    mu = 2.0 * rng.random(energy.size) - 1.0
    a = np.sqrt(energy) / (mass_ratio + 1.0)
    cm_energy = np.maximum(mass_ratio / (mass_ratio + 1.0) * energy - excitation, 0.0)
    b = np.sqrt(mass_ratio / (mass_ratio + 1.0) * cm_energy)
    out = a * a + b * b + 2.0 * a * b * mu
    cos_lab = np.clip((a + b * mu) / np.sqrt(np.maximum(out, 1e-300)), -1.0, 1.0)
    recoil = np.maximum(energy - out - excitation, 0.0)
    return out, recoil, cos_lab


def _macroscopic_cross_sections(energy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return Sigma for n-p elastic, n-C elastic and n-C inelastic in 1/cm."""
    scale = medium.DENSITY * _BARN
    n_h = medium.atoms_per_gram("H") * scale
    n_c = medium.atoms_per_gram("C") * scale
    return (
        n_h * np_elastic_cross_section(energy),
        n_c * carbon_elastic_cross_section(energy),
        n_c * carbon_inelastic_cross_section(energy),
    )


def transport_neutrons(
    kinetic_energy, rng: np.random.Generator, radius: float = medium.SPHERE_RADIUS
) -> NeutronResult:
    """Slow down neutrons emitted isotropically at the sphere centre and capture them.

    Parameters
    ----------
    kinetic_energy : array_like of float, shape (n,)
        Initial neutron kinetic energies in MeV, at most 20 MeV.
    rng : numpy.random.Generator
    radius : float
        LS sphere radius in cm; a neutron that leaves it is lost and not captured.

    Returns
    -------
    NeutronResult
    """
    energy = np.asarray(kinetic_energy, dtype=np.float64).ravel()
    num = energy.size
    capture_position = np.zeros((num, 3))
    escaped = np.zeros(num, dtype=bool)
    recoils = {"neutron": [], "energy": [], "particle": []}
    gammas = {"neutron": [], "position": []}

    live = np.flatnonzero(energy >= ENERGY_CUT)
    direction = isotropic_directions(live.size, rng)
    zeros = np.zeros(live.size)
    # Per-neutron state: energy, index, position x y z, direction u v w.
    energy, index, x, y, z = energy[live], live, zeros, zeros, zeros
    u, v, w = direction[:, 0], direction[:, 1], direction[:, 2]
    radius2 = radius * radius
    num_steps = 0
    while energy.size:
        num_steps += 1
        sigma_h, sigma_c, sigma_in = _macroscopic_cross_sections(energy)
        sigma = sigma_h + sigma_c + sigma_in
        path = -np.log1p(-rng.random(energy.size)) / sigma
        x, y, z = x + u * path, y + v * path, z + w * path
        inside = x * x + y * y + z * z <= radius2
        escaped[index[~inside]] = True

        choice = rng.random(energy.size) * sigma
        on_h = choice < sigma_h
        on_c_inelastic = choice >= sigma_h + sigma_c
        mass_ratio = np.where(on_h, MASS_RATIO_H, MASS_RATIO_C)
        excitation = np.where(on_c_inelastic, CARBON_4439_ENERGY, 0.0)
        new_energy, recoil, cos_lab = _scatter(energy, mass_ratio, excitation, rng)

        recoils["neutron"].append(index[inside])
        recoils["energy"].append(recoil[inside])
        recoils["particle"].append(np.where(on_h[inside], PROTON, CARBON).astype(np.int8))
        emitted = inside & on_c_inelastic
        if np.any(emitted):
            gammas["neutron"].append(index[emitted])
            gammas["position"].append(np.stack([x[emitted], y[emitted], z[emitted]], axis=1))

        thermal = inside & (new_energy < ENERGY_CUT)
        capture_position[index[thermal]] = np.stack([x[thermal], y[thermal], z[thermal]], axis=1)
        keep = np.flatnonzero(inside & ~thermal)
        energy, index, x, y, z = new_energy[keep], index[keep], x[keep], y[keep], z[keep]
        u, v, w = rotate_direction_cosines(u[keep], v[keep], w[keep], cos_lab[keep], rng)
    logger.debug("neutron transport finished after %d steps", num_steps)

    nucleus = np.where(rng.random(num) < carbon_capture_fraction(), CAPTURED_ON_C, CAPTURED_ON_H).astype(np.int8)
    nucleus[escaped] = NOT_CAPTURED
    gamma_energy = np.select([nucleus == CAPTURED_ON_H, nucleus == CAPTURED_ON_C], [CAPTURE_GAMMA_H, CAPTURE_GAMMA_C], 0.0)
    capture_time = rng.exponential(capture_time_constant(), num)
    gamma_neutron = np.concatenate(gammas["neutron"]) if gammas["neutron"] else np.zeros(0, np.int64)
    return NeutronResult(
        recoil_neutron=_concatenate(recoils["neutron"], np.int64),
        recoil_energy=_concatenate(recoils["energy"], np.float64),
        recoil_particle=_concatenate(recoils["particle"], np.int8),
        gamma_neutron=gamma_neutron.astype(np.int64),
        gamma_energy=np.full(gamma_neutron.size, CARBON_4439_ENERGY),
        gamma_position=np.concatenate(gammas["position"]) if gammas["position"] else np.zeros((0, 3)),
        capture_nucleus=nucleus,
        capture_gamma_energy=gamma_energy,
        capture_position=capture_position,
        capture_time=capture_time,
    )


def _concatenate(parts: list, dtype) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)
