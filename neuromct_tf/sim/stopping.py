"""Stopping powers of electrons, protons and carbon ions in the liquid scintillator.

All functions take kinetic energies in MeV (any array shape) and return mass
stopping powers in MeV cm^2/g with the same shape. The LS composition and
density come from :mod:`neuromct_tf.sim.medium`.

* Electrons: collision stopping power from the Bethe formula in the form of
  ICRU Report 37 (1984), with the Sternheimer density-effect
  correction, plus an approximate radiative stopping power. Below a few keV
  the logarithm is modified as proposed by Joy and Luo, Scanning 11 (1989) 176,
  so the stopping power stays finite and positive down to about 10 eV.
* Protons: electronic stopping power from the Andersen-Ziegler form with the
  ICRU Report 49 (1993) elemental coefficients below 1 MeV, the Bethe-Bloch
  formula above 3 MeV, and a log-linear blend in between.
* Carbon ions: the proton stopping power at the same velocity times the
  square of the Barkas effective charge above 1 MeV, proportional to velocity
  below.
"""

from __future__ import annotations

import numpy as np

from neuromct_tf.sim import medium

#: Electron rest energy in MeV (CODATA 2018).
ELECTRON_MASS = 0.51099895
#: Proton rest energy in MeV (CODATA 2018).
PROTON_MASS = 938.27208816
#: Rest energy of the bare carbon-12 nucleus in MeV: 12 u minus six electron masses
#: (binding energy of the electrons neglected), with u = 931.49410242 MeV (CODATA 2018).
CARBON_MASS = 12 * 931.49410242 - 6 * ELECTRON_MASS
#: Classical electron radius in cm (CODATA 2018).
ELECTRON_RADIUS = 2.8179403262e-13
#: Fine-structure constant (CODATA 2018).
FINE_STRUCTURE = 1 / 137.035999084

#: Mean excitation energies in eV of the elements bound in condensed compounds, for
#: the Bragg additivity rule, as recommended in ICRU Report 37 (1984).
BOUND_EXCITATION_ENERGY_EV = {"H": 19.2, "C": 81.0, "N": 82.0, "O": 106.0}

#: Joy-Luo constant k of the low-energy electron stopping power (Joy and Luo, Scanning
#: 11 (1989) 176). Their fitted values lie near 0.8 for light elements.
JOY_LUO_K = 0.8

#: Andersen-Ziegler coefficients (A2, A3, A4, A5) of the proton electronic stopping
#: cross-section in eV per 1e15 atoms/cm^2, with T in keV, from ICRU Report 49 (1993).
PROTON_COEFFICIENTS = {
    "H": (1.440, 242.6, 1.200e4, 0.1159),
    "C": (2.601, 1701.0, 1279.0, 0.01638),
    "N": (3.350, 1683.0, 1900.0, 0.02513),
    "O": (3.000, 1920.0, 2000.0, 0.02230),
}

#: Proton kinetic energies in MeV between which the Andersen-Ziegler fit hands over
#: to the Bethe-Bloch formula (log-linear blend).
PROTON_BLEND_RANGE = (1.0, 3.0)

#: Carbon kinetic energy in MeV below which the carbon stopping power scales with velocity.
CARBON_MATCH_ENERGY = 1.0

#: Kinetic energy in keV below which the proton stopping power scales with velocity,
#: as in the ICRU Report 49 parametrisation.
PROTON_VELOCITY_SCALING_KEV = 10.0


def _z_over_a() -> float:
    """Return the LS electrons per unit molar mass, sum of w_i Z_i / A_i, in mol/g."""
    return sum(e.mass_fraction * e.atomic_number / e.molar_mass for e in medium.ELEMENTS)


def mean_excitation_energy() -> float:
    """Return the mean excitation energy I of the LS in MeV.

    The Bragg additivity rule, ln I = sum(w_i Z_i/A_i ln I_i) / sum(w_i Z_i/A_i), with the
    bound-atom values of :data:`BOUND_EXCITATION_ENERGY_EV`, gives I = 59.3 eV.
    """
    weighted_log = sum(
        e.mass_fraction * e.atomic_number / e.molar_mass * np.log(BOUND_EXCITATION_ENERGY_EV[e.symbol])
        for e in medium.ELEMENTS
    )
    return float(np.exp(weighted_log / _z_over_a())) * 1e-6


def _density_effect_parameters() -> tuple[float, float, float, float]:
    """Return the Sternheimer parameters (C, X0, X1, a) of the LS, with m = 3.

    Sternheimer, Berger and Seltzer, At. Data Nucl. Data Tables 30 (1984) 261: plasma
    energy 28.816 sqrt(rho Z/A) eV, C = 2 ln(I / plasma energy) + 1, and for a condensed
    material with I < 100 eV, X1 = 2 and X0 = 0.2 if C < 3.681, else X0 = 0.326 C - 1.
    """
    plasma_energy = 28.816e-6 * np.sqrt(medium.DENSITY * _z_over_a())
    c_bar = 2.0 * np.log(mean_excitation_energy() / plasma_energy) + 1.0
    x0 = 0.2 if c_bar < 3.681 else 0.326 * c_bar - 1.0
    x1 = 2.0
    a = (c_bar - 4.606 * x0) / (x1 - x0) ** 3
    return c_bar, x0, x1, a


def density_effect(beta_gamma: np.ndarray) -> np.ndarray:
    """Return the Sternheimer density-effect correction delta for the momenta ``beta_gamma``.

    Parameters
    ----------
    beta_gamma : numpy.ndarray
        Momentum over mass, p / (m c), any shape.

    Returns
    -------
    numpy.ndarray
        delta, same shape. It is zero below X0 = log10(beta gamma) = 0.2, because an
        insulator has no density effect at low momentum.
    """
    c_bar, x0, x1, a = _density_effect_parameters()
    x = np.log10(np.asarray(beta_gamma, dtype=np.float64))
    delta = 4.606 * x - c_bar + a * np.clip(x1 - x, 0.0, None) ** 3
    return np.where(x <= x0, 0.0, delta)


def electron_collision_stopping_power(kinetic_energy: np.ndarray) -> np.ndarray:
    """Return the collision stopping power of electrons in the LS, in MeV cm^2/g.

    The Bethe formula as given in ICRU Report 37 (1984), with F^-(tau) for electrons and the
    Sternheimer delta.
    The term 2 ln(1 + k I / T) adds the Joy-Luo low-energy modification: at low energy the
    bracket tends to 2 ln(1.166 T / I), and Joy and Luo replace T by T + k I there. It
    changes the result by 1.5 % at 1 keV and by less than 0.2 % above 10 keV.
    Positrons are treated as electrons: F^+ differs by a few per cent, well below the
    other approximations of the light model.

    Parameters
    ----------
    kinetic_energy : numpy.ndarray
        Electron kinetic energy T in MeV, any shape, T > 0.
    """
    t = np.asarray(kinetic_energy, dtype=np.float64)
    tau = t / ELECTRON_MASS
    gamma = tau + 1.0
    beta2 = 1.0 - 1.0 / gamma**2
    excitation = mean_excitation_energy()

    f_minus = 1.0 - beta2 + (tau**2 / 8.0 - (2.0 * tau + 1.0) * np.log(2.0)) / (tau + 1.0) ** 2
    bracket = (
        np.log(tau**2 * (tau + 2.0) / (2.0 * (excitation / ELECTRON_MASS) ** 2))
        + f_minus
        - density_effect(np.sqrt(gamma**2 - 1.0))
        + 2.0 * np.log1p(JOY_LUO_K * excitation / t)
    )
    prefactor = 2.0 * np.pi * ELECTRON_RADIUS**2 * ELECTRON_MASS * medium.electrons_per_gram()
    return prefactor / beta2 * bracket


def electron_radiative_stopping_power(kinetic_energy: np.ndarray) -> np.ndarray:
    """Return an estimate of the radiative (bremsstrahlung) stopping power of electrons, in MeV cm^2/g.

    S_rad = alpha r_e^2 N_A sum(w_i Z_i (Z_i + 1) / A_i) (T + m c^2) phi, where Z(Z + 1)
    adds electron-electron bremsstrahlung, and phi is the scaled radiative energy-loss
    cross-section of Heitler, The Quantum Theory of Radiation (3rd ed., 1954), section 25:
    16/3 in the non-relativistic limit and 4 ln(2 E / m c^2) - 4/3 without screening.
    The larger of the two is used. It is 0.5 % of the total stopping power at 1 MeV and
    1.2 % at 2 MeV, so the rough phi matters little.
    """
    t = np.asarray(kinetic_energy, dtype=np.float64)
    total_energy = t + ELECTRON_MASS
    phi = np.maximum(16.0 / 3.0, 4.0 * np.log(2.0 * total_energy / ELECTRON_MASS) - 4.0 / 3.0)
    z_squared_per_gram = medium.AVOGADRO * sum(
        e.mass_fraction * e.atomic_number * (e.atomic_number + 1) / e.molar_mass for e in medium.ELEMENTS
    )
    return FINE_STRUCTURE * ELECTRON_RADIUS**2 * z_squared_per_gram * total_energy * phi


def electron_stopping_power(kinetic_energy: np.ndarray) -> np.ndarray:
    """Return the total (collision plus radiative) stopping power of electrons in the LS, in MeV cm^2/g."""
    return electron_collision_stopping_power(kinetic_energy) + electron_radiative_stopping_power(kinetic_energy)


def _andersen_ziegler_stopping_power(kinetic_energy_kev: np.ndarray) -> np.ndarray:
    """Return the ICRU 49 low-energy proton stopping power of the LS in MeV cm^2/g (T in keV, T >= 10)."""
    t = np.asarray(kinetic_energy_kev, dtype=np.float64)
    total = np.zeros_like(t)
    for element in medium.ELEMENTS:
        a2, a3, a4, a5 = PROTON_COEFFICIENTS[element.symbol]
        s_low = a2 * t**0.45
        s_high = a3 / t * np.log(1.0 + a4 / t + a5 * t)
        cross_section = s_low * s_high / (s_low + s_high)  # eV cm^2 per 1e15 atoms
        total += medium.atoms_per_gram(element.symbol) * cross_section * 1e-21  # 1e-15 cm^2, 1e-6 MeV/eV
    return total


def _proton_low_energy_stopping_power(kinetic_energy: np.ndarray) -> np.ndarray:
    """Return the ICRU 49 proton stopping power, proportional to velocity below 10 keV, in MeV cm^2/g."""
    t_kev = np.asarray(kinetic_energy, dtype=np.float64) * 1e3
    t_fit = np.maximum(t_kev, PROTON_VELOCITY_SCALING_KEV)
    velocity_scale = np.sqrt(np.minimum(t_kev / PROTON_VELOCITY_SCALING_KEV, 1.0))
    return _andersen_ziegler_stopping_power(t_fit) * velocity_scale


def _proton_bethe_stopping_power(kinetic_energy: np.ndarray) -> np.ndarray:
    """Return the Bethe-Bloch proton stopping power without shell, Barkas or density corrections.

    The Bethe equation as written in the PDG Review of Particle Physics, "Passage of
    particles through matter", with the exact maximum energy transfer to an electron.
    Without shell corrections it lies 2-3 % above NIST PSTAR near 1 MeV, so it is used
    only above the blend with the ICRU 49 fit.
    """
    t = np.asarray(kinetic_energy, dtype=np.float64)
    gamma = 1.0 + t / PROTON_MASS
    beta2 = 1.0 - 1.0 / gamma**2
    beta_gamma2 = gamma**2 - 1.0
    mass_ratio = ELECTRON_MASS / PROTON_MASS
    max_transfer = 2.0 * ELECTRON_MASS * beta_gamma2 / (1.0 + 2.0 * gamma * mass_ratio + mass_ratio**2)
    excitation = mean_excitation_energy()
    bracket = np.log(2.0 * ELECTRON_MASS * beta_gamma2 * max_transfer / excitation**2) - 2.0 * beta2
    prefactor = 2.0 * np.pi * ELECTRON_RADIUS**2 * ELECTRON_MASS * medium.electrons_per_gram()
    return prefactor / beta2 * bracket


def proton_stopping_power(kinetic_energy: np.ndarray) -> np.ndarray:
    """Return the electronic stopping power of protons in the LS, in MeV cm^2/g.

    Below 1 MeV the ICRU 49 Andersen-Ziegler fit (Bragg additivity over the elements),
    above 3 MeV the Bethe-Bloch formula, in between a blend linear in log T. Nuclear
    stopping is left out: it produces no scintillation light in the Birks model and
    is below 1 % of the electronic stopping power above 30 keV (NIST PSTAR, polyethylene).
    """
    t = np.asarray(kinetic_energy, dtype=np.float64)
    low, high = PROTON_BLEND_RANGE
    weight = np.clip(np.log(t / low) / np.log(high / low), 0.0, 1.0)
    low_energy = _proton_low_energy_stopping_power(t)
    bethe = _proton_bethe_stopping_power(np.maximum(t, low))  # Bethe is negative far below its range
    return (1.0 - weight) * low_energy + weight * bethe


def barkas_effective_charge(kinetic_energy: np.ndarray, mass: float, charge: int) -> np.ndarray:
    """Return the Barkas effective charge Z [1 - exp(-125 beta Z^(-2/3))] of an ion.

    W. H. Barkas, Nuclear Research Emulsions, Vol. 1 (Academic Press, 1963).

    Parameters
    ----------
    kinetic_energy : numpy.ndarray
        Ion kinetic energy in MeV, any shape.
    mass : float
        Ion rest energy in MeV.
    charge : int
        Nuclear charge Z.
    """
    t = np.asarray(kinetic_energy, dtype=np.float64)
    gamma = 1.0 + t / mass
    beta = np.sqrt(1.0 - 1.0 / gamma**2)
    return charge * (1.0 - np.exp(-125.0 * beta * charge ** (-2.0 / 3.0)))


def carbon_stopping_power(kinetic_energy: np.ndarray) -> np.ndarray:
    """Return an estimate of the electronic stopping power of carbon ions in the LS, in MeV cm^2/g.

    Above :data:`CARBON_MATCH_ENERGY`: heavy-ion scaling, the proton stopping power at the
    same velocity (T_p = T m_p / m_C) times the squared Barkas effective charge of carbon.
    Below it the Barkas charge falls too fast, so the stopping power is taken proportional
    to the ion velocity, as in the Lindhard-Scharff theory (Lindhard and Scharff, Phys.
    Rev. 124 (1961) 128), and matched to the scaling at that energy. The Lindhard-Scharff
    formula itself gives 6.7e3 MeV cm^2/g at 1 MeV against 6.1e3 from the scaling, so
    this estimate is good to perhaps 10-20 %. Nuclear stopping, which dominates below
    about 50 keV, is left out because it produces no light.
    """
    t = np.asarray(kinetic_energy, dtype=np.float64)
    scaled = _carbon_effective_charge_stopping_power(np.maximum(t, CARBON_MATCH_ENERGY))
    velocity_factor = np.sqrt(np.minimum(t / CARBON_MATCH_ENERGY, 1.0))
    return scaled * velocity_factor


def _carbon_effective_charge_stopping_power(kinetic_energy: np.ndarray) -> np.ndarray:
    """Return the effective-charge scaled carbon stopping power in MeV cm^2/g."""
    proton_energy = kinetic_energy * PROTON_MASS / CARBON_MASS
    effective_charge = barkas_effective_charge(kinetic_energy, CARBON_MASS, 6)
    return effective_charge**2 * proton_stopping_power(proton_energy)
