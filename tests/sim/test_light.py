"""Tests of the light model: stopping powers, Birks quenching, Cherenkov light and photo-detection."""

from __future__ import annotations

import numpy as np
import pytest

from neuromct_tf.errors import InvalidInputError
from neuromct_tf.sim import detection, light, medium, stopping
from neuromct_tf.sim.deposits import CARBON, ELECTRON, PROMPT, PROTON, Deposits

NOMINAL = dict(
    birks_kb=light.NOMINAL_BIRKS_KB,
    cherenkov_factor=light.NOMINAL_CHERENKOV_FACTOR,
    light_yield=light.NOMINAL_LIGHT_YIELD,
)

#: Z/A of polyethylene (C2H4)n and of the LS in mol/g, to scale NIST PSTAR values to the LS.
POLYETHYLENE_Z_OVER_A = 16.0 / (2 * 12.011 + 4 * 1.008)
LS_Z_OVER_A = sum(e.mass_fraction * e.atomic_number / e.molar_mass for e in medium.ELEMENTS)


@pytest.fixture(scope="module")
def model() -> light.LightModel:
    return light.LightModel.default()


def single_electron_deposits(kinetic_energy: float, num_triggers: int) -> Deposits:
    """Return ``num_triggers`` triggers, each holding one electron of ``kinetic_energy`` MeV."""
    return Deposits(
        trigger=np.arange(num_triggers),
        kinetic_energy=np.full(num_triggers, kinetic_energy),
        particle=np.full(num_triggers, ELECTRON, dtype=np.int8),
        trigger_kind=np.full(num_triggers, PROMPT, dtype=np.int8),
    )


# Total (collision + radiative) electron stopping powers of this LS in MeV cm^2/g, ESTAR-type
# reference values. Tolerance 3 %: the reference values are rounded and may assume a
# slightly different LS composition or mean excitation energy.
@pytest.mark.parametrize(
    ("kinetic_energy", "reference"),
    [(0.01, 24.0), (0.1, 4.32), (0.5, 2.12), (1.0, 1.92), (2.0, 1.90)],
)
def test_electron_stopping_matches_reference(kinetic_energy, reference):
    value = stopping.electron_stopping_power(kinetic_energy)
    assert value == pytest.approx(reference, rel=0.03)


def test_electron_stopping_positive_down_to_10ev():
    energy = np.geomspace(1e-5, 20.0, 500)
    assert np.all(stopping.electron_stopping_power(energy) > 0.0)


def test_radiative_stopping_small_below_2mev():
    energy = np.array([0.1, 1.0, 2.0])
    ratio = stopping.electron_radiative_stopping_power(energy) / stopping.electron_stopping_power(energy)
    assert np.all(ratio < 0.015)


# NIST PSTAR electronic stopping power of polyethylene (MeV cm^2/g), scaled to the LS by the
# ratio of electrons per gram. Tolerance 8 % up to 10 keV, where Bragg additivity and
# chemical-binding effects are largest and the H/C ratio of LS and polyethylene differ;
# 4 % above, the spread between the ICRU 49 fit, Bethe-Bloch and PSTAR.
@pytest.mark.parametrize(
    ("kinetic_energy", "polyethylene", "tolerance"),
    [
        (0.001, 184.9, 0.08),
        (0.01, 584.8, 0.08),
        (0.1, 1054.0, 0.04),
        (0.5, 464.9, 0.04),
        (1.0, 289.1, 0.04),
        (2.0, 174.4, 0.04),
        (5.0, 85.97, 0.04),
        (10.0, 49.23, 0.04),
    ],
)
def test_proton_stopping_matches_pstar(kinetic_energy, polyethylene, tolerance):
    reference = polyethylene * LS_Z_OVER_A / POLYETHYLENE_Z_OVER_A
    assert stopping.proton_stopping_power(kinetic_energy) == pytest.approx(reference, rel=tolerance)


def test_mean_excitation_energy_near_hydrocarbons():
    # NIST ESTAR and PSTAR use 57.4 eV for polyethylene; the LS has less hydrogen, so a slightly higher I.
    assert 57.0e-6 < stopping.mean_excitation_energy() < 65.0e-6


# Reference E_q/T of electrons at kB = 15.45 g/cm^2/GeV. Tolerance 0.02 absolute (a few per
# cent): the ratio at 10 keV depends on the low-energy extension of the stopping power.
@pytest.mark.parametrize(("kinetic_energy", "reference"), [(0.010, 0.56), (0.100, 0.86), (0.662, 0.95)])
def test_electron_birks_ratio_matches_reference(model, kinetic_energy, reference):
    quenched = model.quenched_energy(kinetic_energy, ELECTRON, 15.45)
    assert quenched / kinetic_energy == pytest.approx(reference, abs=0.02)


@pytest.mark.parametrize(("particle", "kinetic_energy"), [(ELECTRON, 0.1), (PROTON, 1.0), (CARBON, 1.0)])
def test_quenched_fraction_falls_with_kb(model, particle, kinetic_energy):
    birks_kb = np.array([0.0, 5.0, 10.0, 15.45, 20.0, 30.0])
    quenched = np.array([model.quenched_energy(kinetic_energy, particle, kb) for kb in birks_kb])
    assert quenched[0] == pytest.approx(kinetic_energy, rel=1e-9)
    assert np.all(np.diff(quenched) < 0.0)


def test_heavier_particles_quenched_more(model):
    fraction = model.quenched_energy(np.ones(3), np.array([ELECTRON, PROTON, CARBON]), 15.45)
    assert fraction[0] > fraction[1] > fraction[2]
    assert fraction[2] < 0.05


def test_quenched_energy_keeps_shape(model):
    energy = np.array([[0.01, 0.1, 1.0], [2.0, 5.0, 10.0]])
    assert model.quenched_energy(energy, ELECTRON, 15.45).shape == (2, 3)
    assert model.quenched_energy(1.0, ELECTRON, 15.45).shape == ()


def test_quenched_energy_continuous_at_grid_end(model):
    end = light.ENERGY_GRID[-1]
    energy = np.array([end * (1 - 1e-6), end, end * (1 + 1e-6)])
    for particle in (ELECTRON, PROTON, CARBON):
        quenched = model.quenched_energy(energy, particle, 15.45)
        assert np.all(np.diff(quenched) > 0.0)
        assert quenched[2] - quenched[0] < 1e-4 * end


def test_quenched_energy_interpolates_kb(model):
    # A kB between grid nodes must agree with a table built directly at that kB.
    direct = light.LightModel.build(birks_kb_grid=np.array([15.45, 16.0]))
    energy = np.array([0.005, 0.05, 0.5, 5.0])
    for particle in (ELECTRON, PROTON, CARBON):
        expected = direct.quenched_energy(energy, particle, 15.45)
        assert model.quenched_energy(energy, particle, 15.45) == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize(("wavelength", "index"), light.REFRACTIVE_INDEX_POINTS)
def test_refractive_index_matches_points(wavelength, index):
    # Tolerance 5e-4: the reference points are given to three decimals.
    assert light.refractive_index(wavelength) == pytest.approx(index, abs=5e-4)


def test_cherenkov_threshold_at_sodium_line():
    # The reference LS threshold is about 0.18 MeV, from beta = 1/n at 589 nm.
    index = light.refractive_index(589.0)
    threshold = stopping.ELECTRON_MASS * (1.0 / np.sqrt(1.0 - 1.0 / index**2) - 1.0)
    assert threshold == pytest.approx(0.18, abs=0.005)


def test_cherenkov_zero_below_threshold(model):
    # The largest index in the window, n(200 nm) = 1.605, sets the lowest threshold, 0.142 MeV.
    below = np.array([0.0, 0.01, 0.1, 0.14])
    assert np.all(model.cherenkov_photons(below, ELECTRON) == 0.0)
    assert model.cherenkov_photons(0.18, ELECTRON) < 1.0


def test_cherenkov_rises_above_threshold(model):
    energy = np.array([0.2, 0.3, 0.5, 1.0, 2.0, 5.0])
    photons = model.cherenkov_photons(energy, ELECTRON)
    assert np.all(np.diff(photons) > 0.0)
    assert photons[3] > 100.0


def test_cherenkov_zero_for_ions(model):
    energy = np.array([1.0, 10.0])
    assert np.all(model.cherenkov_photons(energy, PROTON) == 0.0)
    assert np.all(model.cherenkov_photons(energy, CARBON) == 0.0)


def test_cherenkov_share_few_percent(model):
    # A few per cent of the light of a 1 MeV electron at the nominal point; the model gives 1.4 %.
    deposits = single_electron_deposits(1.0, 1)
    with_cherenkov = model.mean_photons(deposits, **NOMINAL)[0]
    without = model.mean_photons(deposits, **{**NOMINAL, "cherenkov_factor": 0.0})[0]
    share = 1.0 - without / with_cherenkov
    assert 0.005 < share < 0.05


def test_mean_photons_sums_per_trigger(model):
    deposits = Deposits(
        trigger=np.array([0, 0, 0, 2]),
        kinetic_energy=np.array([0.3, 1.2, 2.0, 0.7]),
        particle=np.array([ELECTRON, ELECTRON, PROTON, CARBON], dtype=np.int8),
        trigger_kind=np.full(3, PROMPT, dtype=np.int8),
    )
    photons = model.mean_photons(deposits, **NOMINAL)

    light_yield, factor = NOMINAL["light_yield"], NOMINAL["cherenkov_factor"]
    per_deposit = light_yield * model.quenched_energy(
        deposits.kinetic_energy, deposits.particle, NOMINAL["birks_kb"]
    ) + factor * model.cherenkov_photons(deposits.kinetic_energy, deposits.particle)
    assert photons.shape == (3,)
    assert photons.dtype == np.float64
    assert photons[0] == pytest.approx(per_deposit[:3].sum(), rel=1e-12)
    assert photons[1] == 0.0
    assert photons[2] == pytest.approx(per_deposit[3], rel=1e-12)


def test_mean_photons_above_grid_end(model):
    deposits = single_electron_deposits(25.0, 1)
    photons = model.mean_photons(deposits, **NOMINAL)[0]
    quenched = model.quenched_energy(25.0, ELECTRON, NOMINAL["birks_kb"])
    cherenkov = model.cherenkov_photons(25.0, ELECTRON)
    expected = NOMINAL["light_yield"] * quenched + NOMINAL["cherenkov_factor"] * cherenkov
    assert photons == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "change",
    [
        {"birks_kb": -1.0},
        {"birks_kb": 60.0},
        {"cherenkov_factor": 1.5},
        {"light_yield": -10.0},
    ],
)
def test_mean_photons_rejects_bad_parameters(model, change):
    with pytest.raises(InvalidInputError):
        model.mean_photons(single_electron_deposits(1.0, 1), **{**NOMINAL, **change})


@pytest.mark.parametrize(
    ("kinetic_energy", "particle"),
    [(-0.1, ELECTRON), (np.nan, ELECTRON), (np.inf, PROTON), (1.0, 7), (1.0, -1)],
)
def test_quenched_energy_rejects_bad_deposits(model, kinetic_energy, particle):
    with pytest.raises(InvalidInputError):
        model.quenched_energy(np.array([kinetic_energy]), np.array([particle]), 15.45)


def test_mean_photons_rejects_bad_trigger(model):
    deposits = Deposits(
        trigger=np.array([0, 3]),
        kinetic_energy=np.array([1.0, 1.0]),
        particle=np.zeros(2, dtype=np.int8),
        trigger_kind=np.full(2, PROMPT, dtype=np.int8),
    )
    with pytest.raises(InvalidInputError):
        model.mean_photons(deposits, **NOMINAL)


def test_default_model_is_cached():
    assert light.LightModel.default() is light.LightModel.default()


def test_default_tables_read_only(model):
    with pytest.raises(ValueError):
        model.quenched_fraction[0, 0, 0] = 1.0


def test_one_mev_electron_npe_nominal(model):
    mean_photons = model.mean_photons(single_electron_deposits(1.0, 20000), **NOMINAL)
    npe = detection.detect_npe(mean_photons, np.random.default_rng(11)) * 1e3

    expected = detection.DEFAULT_RESPONSE.detection_efficiency * mean_photons[0]
    standard_error = npe.std() / np.sqrt(npe.size)
    assert 1600.0 < expected < 1700.0
    # The sample mean must match the expected NPE within 5 standard errors (about 1.6 PE).
    assert abs(npe.mean() - expected) < 5.0 * standard_error
    assert 1600.0 < npe.mean() < 1700.0


def test_one_mev_resolution_near_three_percent(model):
    # Target sigma/E of 3 %/sqrt(E); the default response gives 2.75 % at 1 MeV
    # (Poisson and single-PE spread 2.56 %, constant term 1 %). Tolerance 2.5-3.2 %; the
    # statistical error of sigma/mu with 20000 draws is 0.015 % absolute.
    mean_photons = model.mean_photons(single_electron_deposits(1.0, 20000), **NOMINAL)
    npe = detection.detect_npe(mean_photons, np.random.default_rng(12))
    resolution = npe.std() / npe.mean()
    assert 0.025 < resolution < 0.032


def test_detect_npe_same_seed_reproducible():
    mean_photons = np.linspace(0.0, 2e4, 50)
    first = detection.detect_npe(mean_photons, np.random.default_rng(5))
    second = detection.detect_npe(mean_photons, np.random.default_rng(5))
    other = detection.detect_npe(mean_photons, np.random.default_rng(6))
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)


def test_detect_npe_output_kilo_float64():
    npe = detection.detect_npe(np.array([0.0, 6000.0]), np.random.default_rng(3))
    assert npe.dtype == np.float64
    assert npe.shape == (2,)
    assert npe[0] == 0.0
    assert 0.8 < npe[1] < 1.2  # about 0.169 * 6000 = 1014 PE, in kNPE


def test_detect_npe_rejects_negative_photons():
    with pytest.raises(InvalidInputError):
        detection.detect_npe(np.array([10.0, -1.0]), np.random.default_rng(0))


@pytest.mark.parametrize(
    "fields",
    [{"detection_efficiency": 0.0}, {"detection_efficiency": 1.2}, {"spe_resolution": -0.1}, {"constant_term": -0.01}],
)
def test_detector_response_rejects_bad_values(fields):
    with pytest.raises(InvalidInputError):
        detection.DetectorResponse(**fields)
