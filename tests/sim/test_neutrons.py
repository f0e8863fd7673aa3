"""Tests of neutron slowing-down and capture against elastic kinematics and thermal cross-sections."""

import numpy as np
import pytest
from scipy import stats

from neuromct_tf.sim import medium, neutrons
from neuromct_tf.sim.deposits import CARBON, PROTON

AVOGADRO = 6.02214076e23


def mean_log_decrement(mass_ratio):
    """Mean lethargy gain per elastic collision, xi = 1 + (A-1)^2 / (2A) ln(|A-1| / (A+1))."""
    a = mass_ratio
    return 1.0 + (a - 1.0) ** 2 / (2.0 * a) * np.log(abs(a - 1.0) / (a + 1.0))


def test_carbon_capture_fraction_value():
    # sigma_H = 0.332 b, sigma_C = 3.5 mb, atoms per gram from the LS mass fractions.
    n_h = 0.1220 / 1.008
    n_c = 0.8776 / 12.011
    expected = n_c * 0.0035 / (n_h * 0.332 + n_c * 0.0035)
    assert expected == pytest.approx(0.00632, abs=1e-5)
    assert neutrons.carbon_capture_fraction() == pytest.approx(expected, rel=1e-6)


def test_carbon_capture_sampled_fraction():
    num = 200_000
    result = neutrons.transport_neutrons(np.full(num, 0.002), np.random.default_rng(21))
    fraction = np.mean(result.capture_nucleus == neutrons.CAPTURED_ON_C)
    expected = neutrons.carbon_capture_fraction()
    # Binomial standard error is 1.8e-4 for 2e5 neutrons; 4 sigma bounds a fixed seed safely.
    assert fraction == pytest.approx(expected, abs=4 * np.sqrt(expected * (1 - expected) / num))
    gamma = result.capture_gamma_energy
    assert np.all((gamma == neutrons.CAPTURE_GAMMA_H) | (gamma == neutrons.CAPTURE_GAMMA_C))


def test_capture_time_mean():
    num = 100_000
    result = neutrons.transport_neutrons(np.full(num, 0.002), np.random.default_rng(22))
    # 1 / (v n sigma) with v = 2200 m/s: about 217 us for this LS.
    n_h = medium.DENSITY * medium.atoms_per_gram("H")
    n_c = medium.DENSITY * medium.atoms_per_gram("C")
    tau = 1e6 / (2.2e5 * (n_h * 0.332e-24 + n_c * 0.0035e-24))
    assert tau == pytest.approx(217.3, abs=0.5)
    # Exponential: the standard error of the mean is tau / sqrt(n).
    assert result.capture_time.mean() == pytest.approx(tau, abs=4 * tau / np.sqrt(num))


def test_np_collisions_follow_lethargy():
    num = 20_000
    start = 2.0
    result = neutrons.transport_neutrons(np.full(num, start), np.random.default_rng(23))
    n_p = np.bincount(result.recoil_neutron[result.recoil_particle == PROTON], minlength=num).mean()
    n_c = np.bincount(result.recoil_neutron[result.recoil_particle == CARBON], minlength=num).mean()
    xi_h = mean_log_decrement(neutrons.MASS_RATIO_H)
    xi_c = mean_log_decrement(neutrons.MASS_RATIO_C)
    assert xi_h == pytest.approx(1.0, abs=1e-4)
    assert xi_c == pytest.approx(0.159, abs=1e-3)  # 0.158 for A = 12; the 12C/n mass ratio is 11.89
    # Lethargy ln(E0/E) grows by xi per collision on average, so the collisions needed to
    # go from 2 MeV to the 1 keV cut carry ln(2000) = 7.6 plus the overshoot of the last
    # one, which is 1 for hydrogen (exponential gains are memoryless). The tolerance of
    # 0.15 covers the smaller overshoot when carbon makes the last step and a statistical
    # error of 0.02.
    lethargy = np.log(start / neutrons.ENERGY_CUT)
    assert xi_h * n_p + xi_c * n_c == pytest.approx(lethargy + 1.0, abs=0.15)
    assert n_p > lethargy


def test_first_np_recoil_uniform():
    num = 20_000
    start = 1.0
    result = neutrons.transport_neutrons(np.full(num, start), np.random.default_rng(24))
    # Recoils are stored step by step, so each neutron's first entry is its first collision.
    _, first = np.unique(result.recoil_neutron, return_index=True)
    is_proton = result.recoil_particle[first] == PROTON
    energy = result.recoil_energy[first][is_proton]
    # Isotropic CM scattering on a nucleus of mass ratio A ~ 1 gives a recoil energy uniform
    # on [0, 4A/(1+A)^2 E0].
    top = 4 * neutrons.MASS_RATIO_H / (1 + neutrons.MASS_RATIO_H) ** 2 * start
    assert energy.max() <= top
    assert stats.kstest(energy, stats.uniform(0, top).cdf).pvalue > 1e-3


def test_first_carbon_recoil_range():
    num = 20_000
    start = 1.0
    result = neutrons.transport_neutrons(np.full(num, start), np.random.default_rng(25))
    _, first = np.unique(result.recoil_neutron, return_index=True)
    energy = result.recoil_energy[first][result.recoil_particle[first] == CARBON]
    a = neutrons.MASS_RATIO_C
    top = 4 * a / (1 + a) ** 2 * start  # 28.4 % of E0 for a head-on collision
    assert energy.max() <= top
    assert energy.mean() == pytest.approx(top / 2, rel=0.05)


def test_recoils_conserve_neutron_energy():
    num = 5_000
    start = 3.0  # below the 4.81 MeV inelastic threshold
    result = neutrons.transport_neutrons(np.full(num, start), np.random.default_rng(26))
    total = np.bincount(result.recoil_neutron, weights=result.recoil_energy, minlength=num)
    assert np.all(total <= start + 1e-12)
    assert np.all(total >= start - neutrons.ENERGY_CUT)
    assert result.gamma_neutron.size == 0


def test_inelastic_gamma_only_above_threshold():
    below = neutrons.transport_neutrons(np.full(20_000, 4.7), np.random.default_rng(27))
    above = neutrons.transport_neutrons(np.full(20_000, 8.0), np.random.default_rng(28))
    assert below.gamma_neutron.size == 0
    assert above.gamma_neutron.size > 0
    np.testing.assert_allclose(above.gamma_energy, neutrons.CARBON_4439_ENERGY)
    total = np.bincount(above.recoil_neutron, weights=above.recoil_energy, minlength=20_000)
    with_gamma = np.zeros(20_000, dtype=bool)
    with_gamma[above.gamma_neutron] = True
    # Recoils plus the 4.439 MeV excitation account for the neutron energy.
    np.testing.assert_allclose(total[with_gamma] + neutrons.CARBON_4439_ENERGY, 8.0, atol=neutrons.ENERGY_CUT)


def test_np_cross_section_zero_energy_limit():
    a_t, _, a_s, _ = neutrons.NP_SCATTERING_LENGTHS
    # Zero-energy limit pi (3 a_t^2 + a_s^2), in barn (1 b = 100 fm^2).
    expected = np.pi * (3 * a_t**2 + a_s**2) / 100.0
    assert neutrons.np_elastic_cross_section(0.0) == pytest.approx(expected, rel=1e-9)
    assert expected == pytest.approx(20.5, abs=0.1)


def test_neutrons_escape_small_sphere():
    result = neutrons.transport_neutrons(np.full(1000, 5.0), np.random.default_rng(29), radius=1.0)
    assert np.mean(result.capture_nucleus == neutrons.NOT_CAPTURED) > 0.5
    assert np.all(result.capture_gamma_energy[result.capture_nucleus == neutrons.NOT_CAPTURED] == 0.0)


def test_neutron_transport_same_seed_identical():
    first = neutrons.transport_neutrons(np.full(500, 5.0), np.random.default_rng(3))
    second = neutrons.transport_neutrons(np.full(500, 5.0), np.random.default_rng(3))
    np.testing.assert_array_equal(first.recoil_energy, second.recoil_energy)
    np.testing.assert_array_equal(first.capture_position, second.capture_position)
