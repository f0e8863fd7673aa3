"""Calibration sources: primary particles and their charged-particle deposits.

Every source sits at the centre of the LS sphere inside a capsule. The
capsule stops all charged particles (betas, alphas, conversion and pair
electrons) and is transparent to gammas and neutrons.

Gamma sources give one trigger per event. Cs137 and K40 emit one gamma;
Co60 emits its 1173 and 1333 keV cascade in the same event, in independent
isotropic directions (the real angular correlation, 1 + 0.125 cos^2 + ...,
does not change the energy deposited in a 17.7 m sphere). Decays without a
gamma leave no light and are not simulated. Gamma energies are the ENSDF
adopted values as listed by NNDC NuDat 3.

Neutron sources give two triggers per event: a prompt one with the proton and
carbon recoils, the source gamma and any 12C(n,n') gamma, and a delayed one
with the capture gamma. Neutron energies come from two-body (alpha,n)
kinematics, isotropic in the centre-of-mass frame, for a distribution of
alpha energies at the moment of the reaction; see :func:`sample_alpha_energy`.
This gives the correlation between the neutron energy and the de-excitation
gamma of the residual nucleus directly.
"""

from __future__ import annotations

import logging
import numbers
from dataclasses import dataclass

import numpy as np

from neuromct_tf.errors import InvalidInputError
from neuromct_tf.sim import gammas, neutrons
from neuromct_tf.sim.deposits import DELAYED, ELECTRON, PROMPT, Deposits

logger = logging.getLogger(__name__)

SOURCE_NAMES = ("Cs137", "K40", "Co60", "AmBe", "AmC")

#: Gamma lines in MeV per event (ENSDF via NNDC NuDat 3): 137Cs (from 137mBa) 661.657 keV,
#: 40K (from 40Ar*) 1460.820 keV, 60Co (from 60Ni*) 1173.228 and 1332.492 keV. The 0.15 %
#: of 60Co decays that skip the 1173 keV gamma are neglected.
GAMMA_LINES = {
    "Cs137": (0.661657,),
    "K40": (1.460820,),
    "Co60": (1.173228, 1.332492),
}

#: Events per chunk of :func:`simulate_deposits`. Besides the output (17 bytes per deposit), a
#: chunk of AmBe events needs about 250 MB of working memory (peak RSS measured for 10^6 events).
CHUNK_EVENTS = 100_000

# Nuclear masses in MeV: atomic masses of the 2020 atomic mass evaluation times
# 931.49410242 MeV/u minus the electron masses; alpha mass from CODATA 2018.
_ALPHA_MASS = 3727.3794066
_BE9_MASS = 8392.750
_C13_MASS = 12109.482
_O16_MASS = 14895.080

#: Kinetic energy in MeV of the main 241Am alpha line (5485.56 keV, 84.8 %, ENSDF).
AM241_ALPHA_ENERGY = 5.48556
#: Lower end in MeV of the alpha energies at which (alpha,n) reactions happen in the model.
ALPHA_ONSET_ENERGY = 1.5

#: 12C level energies in MeV reached by 9Be(alpha,n): ground, 4.439 MeV (decays by a 4.438 MeV gamma),
#: 7.654 MeV (Hoyle state, decays to three alphas, no gamma). The last also stands for the
#: 9Be(alpha,alpha'n)8Be break-up, which gives neutrons in the same range below about 1.5 MeV.
AMBE_LEVELS = (0.0, 4.43891, 7.65407)
#: Share of neutrons per 12C level. The 4.439 MeV share equals the 4.438 MeV gamma-to-neutron
#: ratio 0.575 (Z. Liu et al., Appl. Radiat. Isot. 65 (2007) 1318). The split of the rest
#: between ground state and low-energy group is set so that the mean neutron energy is the
#: ISO 8529-1 value of about 4.2 MeV.
#: NOTE: the shape is a kinematic model, not the tabulated ISO 8529-1 spectrum. It has the
#: right end point (11.0 MeV) and mean, but its peaks follow the alpha-energy model.
AMBE_LEVEL_FRACTIONS = (0.214, 0.575, 0.211)
#: 4.439 MeV level de-excitation gamma in MeV after the 12C recoil correction.
AMBE_GAMMA_ENERGY = 4.4380

#: 16O levels in MeV reached by 13C(alpha,n) with 241Am alphas: ground, 6.049 MeV (0+, decays by
#: e+e- pair emission), 6.130 MeV (3-, decays by a 6.129 MeV gamma). Level energies: ENSDF.
AMC_LEVELS = (0.0, 6.0494, 6.12989)
#: Probability of each excited 16O level for a reaction with an alpha above its threshold
#: (5.01 and 5.12 MeV in the lab).
#: NOTE: estimate, because the excited-state partial cross-sections rise steeply above
#: threshold and are poorly measured. With these values 2.6 % of AmC neutrons come with a
#: 6.13 MeV gamma and another 2.6 % with an e+e- pair.
AMC_EXCITED_PROBABILITY = (0.15, 0.15)
#: 6.130 MeV level de-excitation gamma in MeV after the 16O recoil correction.
AMC_GAMMA_ENERGY = 6.1286


@dataclass(frozen=True)
class NeutronEmission:
    """Primary particles of a neutron source, one neutron per event.

    Attributes
    ----------
    neutron_energy : numpy.ndarray of float64, shape (n,)
        Neutron kinetic energy in MeV.
    gamma_event : numpy.ndarray of int64, shape (m,)
        Event index of each prompt source gamma.
    gamma_energy : numpy.ndarray of float64, shape (m,)
        Gamma energy in MeV.
    gamma_direction : numpy.ndarray of float64, shape (m, 3)
        Unit direction of each gamma.
    """

    neutron_energy: np.ndarray
    gamma_event: np.ndarray
    gamma_energy: np.ndarray
    gamma_direction: np.ndarray


def sample_alpha_energy(count: int, rng: np.random.Generator, minimum: float = ALPHA_ONSET_ENERGY) -> np.ndarray:
    """Sample the alpha kinetic energy at the moment of an (alpha,n) reaction, in MeV.

    In a thick target the reaction yield per unit alpha energy is
    sigma(E) / S(E). Both light-target (alpha,n) cross-sections rise steeply
    above the Coulomb barrier while the stopping power S falls slowly, so the
    model takes a density rising linearly from :data:`ALPHA_ONSET_ENERGY`
    (zero) to :data:`AM241_ALPHA_ENERGY`, truncated below ``minimum``.
    Alpha energy loss in the source matrix before the target is neglected.

    Parameters
    ----------
    count : int
    rng : numpy.random.Generator
    minimum : float
        Lowest alpha energy in MeV, for a reaction channel with a threshold.

    Returns
    -------
    numpy.ndarray of float64, shape (count,)
    """
    low = max(minimum, ALPHA_ONSET_ENERGY) - ALPHA_ONSET_ENERGY
    span = AM241_ALPHA_ENERGY - ALPHA_ONSET_ENERGY
    # Inverse CDF of a linear density on [low, span].
    squared = low**2 + (span**2 - low**2) * rng.random(count)
    return ALPHA_ONSET_ENERGY + np.sqrt(squared)


def alpha_n_neutron_energy(alpha_energy, target_mass, residual_mass, excitation, rng) -> np.ndarray:
    """Sample lab neutron energies of A(alpha,n)B reactions, isotropic in the CM frame.

    Non-relativistic two-body kinematics: the neutron energy is
    ``(a + b mu)^2 + b^2 (1 - mu^2)`` with ``a^2 = m_n m_alpha E_alpha / M^2``
    (CM motion), ``b^2 = m_B / (m_B + m_n) * (E_alpha m_A / M + Q - E_x)`` (neutron
    energy in the CM frame), ``M = m_alpha + m_A`` and ``mu`` uniform in [-1, 1].

    Parameters
    ----------
    alpha_energy : numpy.ndarray of float64, shape (n,)
        Alpha kinetic energy in MeV.
    target_mass, residual_mass : float
        Nuclear masses of A and of B (ground state) in MeV.
    excitation : numpy.ndarray of float64, shape (n,)
        Excitation energy of B in MeV.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray of float64, shape (n,)
        Neutron kinetic energy in MeV; 0 where the channel is closed.
    """
    total_mass = _ALPHA_MASS + target_mass
    q_value = total_mass - neutrons.NEUTRON_MASS - residual_mass
    mu = 2.0 * rng.random(alpha_energy.size) - 1.0
    a = np.sqrt(neutrons.NEUTRON_MASS * _ALPHA_MASS * alpha_energy) / total_mass
    cm_energy = np.maximum(alpha_energy * target_mass / total_mass + q_value - excitation, 0.0)
    b = np.sqrt(residual_mass / (residual_mass + neutrons.NEUTRON_MASS) * cm_energy)
    return a * a + b * b + 2.0 * a * b * mu


def _threshold_alpha_energy(target_mass, residual_mass, excitation) -> float:
    """Return the lab alpha energy in MeV at which the level ``excitation`` of B opens."""
    total_mass = _ALPHA_MASS + target_mass
    q_value = total_mass - neutrons.NEUTRON_MASS - residual_mass
    return max(excitation - q_value, 0.0) * total_mass / target_mass


def sample_ambe(count: int, rng: np.random.Generator) -> NeutronEmission:
    """Sample 241Am-9Be neutrons and their correlated 4.438 MeV gammas.

    The 12C level is drawn from :data:`AMBE_LEVEL_FRACTIONS`; the alpha energy
    is then drawn above the level's threshold, and the neutron energy from
    the two-body kinematics. Only the 4.439 MeV level emits a gamma, so the
    gamma always comes with a neutron of at most 6.4 MeV.

    Returns
    -------
    NeutronEmission
    """
    level = rng.choice(len(AMBE_LEVELS), size=count, p=AMBE_LEVEL_FRACTIONS)
    excitation = np.asarray(AMBE_LEVELS)[level]
    alpha_energy = np.empty(count)
    for index, level_energy in enumerate(AMBE_LEVELS):
        selected = level == index
        minimum = _threshold_alpha_energy(_BE9_MASS, neutrons.CARBON12_MASS, level_energy)
        alpha_energy[selected] = sample_alpha_energy(int(selected.sum()), rng, minimum)
    energy = alpha_n_neutron_energy(alpha_energy, _BE9_MASS, neutrons.CARBON12_MASS, excitation, rng)
    gamma_event = np.flatnonzero(level == 1)
    return NeutronEmission(
        neutron_energy=energy,
        gamma_event=gamma_event.astype(np.int64),
        gamma_energy=np.full(gamma_event.size, AMBE_GAMMA_ENERGY),
        gamma_direction=gammas.isotropic_directions(gamma_event.size, rng),
    )


def sample_amc(count: int, rng: np.random.Generator) -> NeutronEmission:
    """Sample 241Am-13C neutrons with the 6.13 MeV gamma or the pair of the 6.049 MeV 16O level.

    An alpha above the threshold of an excited level reaches it with the
    probability :data:`AMC_EXCITED_PROBABILITY`. The e+e- pair of the
    6.049 MeV level stops in the capsule; its two back-to-back 511 keV
    annihilation gammas enter the LS.

    Returns
    -------
    NeutronEmission
    """
    alpha_energy = sample_alpha_energy(count, rng)
    choice = rng.random(count)
    level = np.zeros(count, dtype=np.intp)
    cumulative = 0.0
    for index in (1, 2):
        threshold = _threshold_alpha_energy(_C13_MASS, _O16_MASS, AMC_LEVELS[index])
        band = (choice >= cumulative) & (choice < cumulative + AMC_EXCITED_PROBABILITY[index - 1])
        level[band & (alpha_energy > threshold)] = index
        cumulative += AMC_EXCITED_PROBABILITY[index - 1]
    excitation = np.asarray(AMC_LEVELS)[level]
    energy = alpha_n_neutron_energy(alpha_energy, _C13_MASS, _O16_MASS, excitation, rng)

    gamma_events = np.flatnonzero(level == 2)
    pair_events = np.flatnonzero(level == 1)
    pair_direction = gammas.isotropic_directions(pair_events.size, rng)
    return NeutronEmission(
        neutron_energy=energy,
        gamma_event=np.concatenate([gamma_events, pair_events, pair_events]).astype(np.int64),
        gamma_energy=np.concatenate([
            np.full(gamma_events.size, AMC_GAMMA_ENERGY),
            np.full(2 * pair_events.size, gammas.ELECTRON_MASS),
        ]),
        gamma_direction=np.concatenate(
            [gammas.isotropic_directions(gamma_events.size, rng), pair_direction, -pair_direction]
        ),
    )


_NEUTRON_SAMPLERS = {"AmBe": sample_ambe, "AmC": sample_amc}


def simulate_deposits(source: str, num_events: int, rng: np.random.Generator) -> Deposits:
    """Simulate ``num_events`` decays of a calibration source at the centre of the LS.

    Parameters
    ----------
    source : str
        One of :data:`SOURCE_NAMES`.
    num_events : int
        Number of events, >= 0.
    rng : numpy.random.Generator
        The only source of randomness; the same state gives identical arrays.

    Returns
    -------
    Deposits
        For gamma sources, trigger ``i`` is event ``i`` (PROMPT). For neutron
        sources, event ``i`` gives trigger ``2i`` (PROMPT: recoils and prompt
        gammas) and ``2i + 1`` (DELAYED: capture gamma). Within a trigger,
        deposits are not in time order.

    Raises
    ------
    InvalidInputError
        If ``source`` is unknown or ``num_events`` is negative.
    """
    if source not in SOURCE_NAMES:
        raise InvalidInputError(f"unknown calibration source {source!r}; known sources: {', '.join(SOURCE_NAMES)}")
    if isinstance(num_events, bool) or not isinstance(num_events, numbers.Integral) or num_events < 0:
        raise InvalidInputError(f"num_events must be a non-negative integer, got {num_events!r}")
    num_events = int(num_events)
    triggers_per_event = 2 if source in _NEUTRON_SAMPLERS else 1

    parts = []
    for start in range(0, num_events, CHUNK_EVENTS):
        count = min(CHUNK_EVENTS, num_events - start)
        if source in _NEUTRON_SAMPLERS:
            part = _simulate_neutron_chunk(_NEUTRON_SAMPLERS[source], count, rng)
        else:
            part = _simulate_gamma_chunk(GAMMA_LINES[source], count, rng)
        parts.append((part, start * triggers_per_event))
    logger.debug("simulated %d %s events in %d chunks", num_events, source, len(parts))
    return _concatenate_chunks(parts, num_events, triggers_per_event)


def _simulate_gamma_chunk(lines: tuple, count: int, rng: np.random.Generator):
    """Return (trigger, kinetic_energy, particle) of ``count`` gamma-source events."""
    energy = np.tile(np.asarray(lines, dtype=np.float64), count)
    trigger = np.repeat(np.arange(count, dtype=np.int64), len(lines))
    result = gammas.transport_gammas(energy, trigger, rng)
    return result.trigger, result.kinetic_energy, np.full(result.trigger.size, ELECTRON, dtype=np.int8)


def _simulate_neutron_chunk(sampler, count: int, rng: np.random.Generator):
    """Return (trigger, kinetic_energy, particle) of ``count`` neutron-source events, two triggers each."""
    emission = sampler(count, rng)
    result = neutrons.transport_neutrons(emission.neutron_energy, rng)
    captured = np.flatnonzero(result.capture_nucleus != neutrons.NOT_CAPTURED)

    num_source, num_inelastic = emission.gamma_event.size, result.gamma_neutron.size
    energy = np.concatenate([emission.gamma_energy, result.gamma_energy, result.capture_gamma_energy[captured]])
    trigger = np.concatenate([2 * emission.gamma_event, 2 * result.gamma_neutron, 2 * captured + 1])
    position = np.concatenate([np.zeros((num_source, 3)), result.gamma_position, result.capture_position[captured]])
    direction = np.concatenate([
        emission.gamma_direction,
        gammas.isotropic_directions(num_inelastic + captured.size, rng),
    ])
    electrons = gammas.transport_gammas(energy, trigger, rng, position=position, direction=direction)
    return (
        np.concatenate([2 * result.recoil_neutron, electrons.trigger]),
        np.concatenate([result.recoil_energy, electrons.kinetic_energy]),
        np.concatenate([result.recoil_particle, np.full(electrons.trigger.size, ELECTRON, dtype=np.int8)]),
    )


def _concatenate_chunks(parts: list, num_events: int, triggers_per_event: int) -> Deposits:
    """Join chunk results, shifting each chunk's triggers by its first trigger index.

    Fields are joined one at a time and each chunk's copy is released right
    after, so the peak memory is about the output plus one field of it.
    """
    kinds = np.array([PROMPT, DELAYED][:triggers_per_event], dtype=np.int8)
    trigger_kind = np.tile(kinds, num_events)
    columns = [[part[field] for part, _ in parts] for field in range(3)]
    offsets = [offset for _, offset in parts]
    parts.clear()
    joined = []
    for field, dtype in enumerate((np.int64, np.float64, np.int8)):
        pieces = columns[field]
        total = sum(piece.size for piece in pieces)
        out = np.empty(total, dtype=dtype)
        start = 0
        for index in range(len(pieces)):
            piece = pieces[index]
            out[start : start + piece.size] = piece
            if field == 0:
                out[start : start + piece.size] += offsets[index]
            start += piece.size
            pieces[index] = None
        joined.append(out)
    return Deposits(trigger=joined[0], kinetic_energy=joined[1], particle=joined[2], trigger_kind=trigger_kind)
