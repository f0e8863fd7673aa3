"""Tests of the calibration sources: trigger layout, energy sums and source spectra."""

import numpy as np
import pytest

from neuromct_tf.errors import InvalidInputError
from neuromct_tf.sim import neutrons, sources
from neuromct_tf.sim.deposits import CARBON, DELAYED, ELECTRON, PROMPT, PROTON


def binomial_tolerance(probability, num, sigmas=4):
    return sigmas * np.sqrt(probability * (1 - probability) / num)


def test_unknown_source_raises():
    with pytest.raises(InvalidInputError) as error:
        sources.simulate_deposits("Na22", 10, np.random.default_rng(0))
    message = str(error.value)
    assert "Na22" in message
    for name in sources.SOURCE_NAMES:
        assert name in message


def test_negative_event_count_raises():
    with pytest.raises(InvalidInputError, match="num_events"):
        sources.simulate_deposits("Cs137", -1, np.random.default_rng(0))


@pytest.mark.parametrize("source", ["Cs137", "K40", "Co60"])
def test_gamma_source_trigger_layout(source):
    deposits = sources.simulate_deposits(source, 2000, np.random.default_rng(1))
    assert deposits.num_triggers == 2000
    assert np.all(deposits.trigger_kind == PROMPT)
    assert np.all(deposits.particle == ELECTRON)
    assert deposits.trigger.dtype == np.int64
    assert deposits.kinetic_energy.dtype == np.float64
    assert deposits.particle.dtype == np.int8
    assert deposits.trigger_kind.dtype == np.int8
    assert deposits.trigger.min() >= 0
    assert deposits.trigger.max() < 2000


@pytest.mark.parametrize("source", ["AmBe", "AmC"])
def test_neutron_source_trigger_layout(source):
    num = 2000
    deposits = sources.simulate_deposits(source, num, np.random.default_rng(2))
    assert deposits.num_triggers == 2 * num
    np.testing.assert_array_equal(deposits.trigger_kind[0::2], PROMPT)
    np.testing.assert_array_equal(deposits.trigger_kind[1::2], DELAYED)
    recoil = deposits.particle != ELECTRON
    assert np.all(deposits.trigger[recoil] % 2 == 0)
    assert set(np.unique(deposits.particle)) == {ELECTRON, PROTON, CARBON}
    # Every neutron is captured in the 17.7 m sphere, and the capture gamma is fully absorbed.
    delayed = deposits.deposited_energy()[1::2]
    on_h = np.isclose(delayed, neutrons.CAPTURE_GAMMA_H, rtol=1e-9)
    on_c = np.isclose(delayed, neutrons.CAPTURE_GAMMA_C, rtol=1e-9)
    assert np.all(on_h | on_c)


def test_cs137_deposits_bounded():
    num = 20_000
    deposited = sources.simulate_deposits("Cs137", num, np.random.default_rng(3)).deposited_energy()
    assert np.all(deposited <= 0.661657 + 1e-12)
    assert np.mean(np.isclose(deposited, 0.661657, rtol=1e-12)) > 0.999


def test_co60_full_absorption_sum():
    num = 20_000
    deposited = sources.simulate_deposits("Co60", num, np.random.default_rng(4)).deposited_energy()
    assert np.all(deposited <= 2.505720 + 1e-12)
    assert np.mean(np.isclose(deposited, 2.505720, rtol=1e-12)) > 0.999


def test_ambe_mean_and_max_energy():
    num = 200_000
    energy = sources.sample_ambe(num, np.random.default_rng(5)).neutron_energy
    # ISO 8529-1 gives a mean of about 4.2 MeV; the model's level fractions are set to it,
    # and the statistical error of the mean (2.5 MeV / sqrt(2e5) = 0.006 MeV) is far smaller.
    assert energy.mean() == pytest.approx(4.2, abs=0.05)
    # End point: ground-state 12C, 5.486 MeV alpha, neutron forward: 11.04 MeV.
    assert 10.7 < energy.max() <= 11.04
    assert energy.min() >= 0.0


def test_ambe_gamma_fraction():
    num = 200_000
    emission = sources.sample_ambe(num, np.random.default_rng(6))
    fraction = emission.gamma_event.size / num
    assert fraction == pytest.approx(0.575, abs=binomial_tolerance(0.575, num))
    np.testing.assert_allclose(emission.gamma_energy, sources.AMBE_GAMMA_ENERGY)


def test_ambe_gamma_neutrons_are_slower():
    emission = sources.sample_ambe(100_000, np.random.default_rng(7))
    # Leaving 12C at 4.439 MeV lowers Q from 5.70 to 1.26 MeV: those neutrons stay below 6.4 MeV.
    assert emission.neutron_energy[emission.gamma_event].max() < 6.4
    without = np.ones(100_000, dtype=bool)
    without[emission.gamma_event] = False
    assert emission.neutron_energy[without].max() > 10.0


def test_amc_kinematic_limits():
    emission = sources.sample_amc(200_000, np.random.default_rng(8))
    energy = emission.neutron_energy
    # 13C(alpha,n)16O, Q = 2.216 MeV, 5.486 MeV alpha: forward ground-state neutrons reach 7.47 MeV.
    assert 7.2 < energy.max() <= 7.48
    gamma = np.isclose(emission.gamma_energy, sources.AMC_GAMMA_ENERGY)
    # With 16O at 6.130 MeV only 0.28 MeV is left in the CM frame: neutrons below 0.7 MeV.
    assert gamma.sum() > 0
    assert energy[emission.gamma_event[gamma]].max() < 0.7


def test_prompt_ambe_energy_includes_gamma():
    num = 20_000
    rng = np.random.default_rng(9)
    deposits = sources.simulate_deposits("AmBe", num, rng)
    prompt = deposits.deposited_energy()[0::2]
    # A neutron's recoils cannot exceed 11.04 MeV; with the 4.438 MeV gamma up to 6.4 + 4.44.
    assert prompt.max() < 11.04 + 2 * neutrons.CARBON_4439_ENERGY
    electron_energy = np.bincount(deposits.trigger[deposits.particle == ELECTRON],
                                  weights=deposits.kinetic_energy[deposits.particle == ELECTRON],
                                  minlength=2 * num)[0::2]
    # The 4.438 MeV source gamma is fully absorbed, so its triggers hold 4.438 MeV of electrons,
    # or 4.438 + 4.439 MeV when the neutron also excites 12C by (n,n'). Their share is the
    # gamma-to-neutron ratio 0.575.
    source_gamma = sources.AMBE_GAMMA_ENERGY
    with_source = np.isclose(electron_energy, source_gamma, rtol=1e-9) | np.isclose(
        electron_energy, source_gamma + neutrons.CARBON_4439_ENERGY, rtol=1e-9
    )
    assert np.mean(with_source) == pytest.approx(0.575, abs=binomial_tolerance(0.575, num))
    # Neutrons above the 4.81 MeV threshold also produce 12C(n,n') gammas without a source gamma.
    assert np.any(np.isclose(electron_energy, neutrons.CARBON_4439_ENERGY, rtol=1e-9))


@pytest.mark.parametrize("source", sources.SOURCE_NAMES)
def test_same_seed_identical_deposits(source):
    first = sources.simulate_deposits(source, 500, np.random.default_rng(10))
    second = sources.simulate_deposits(source, 500, np.random.default_rng(10))
    for name in ("trigger", "kinetic_energy", "particle", "trigger_kind"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))


def test_chunks_keep_trigger_numbering(monkeypatch):
    monkeypatch.setattr(sources, "CHUNK_EVENTS", 300)
    deposits = sources.simulate_deposits("AmBe", 1000, np.random.default_rng(11))
    assert deposits.num_triggers == 2000
    # Every event, in every chunk, has its delayed capture gamma in trigger 2i + 1.
    assert np.all(deposits.deposited_energy()[1::2] > 2.0)


def test_zero_events_empty_deposits():
    deposits = sources.simulate_deposits("Co60", 0, np.random.default_rng(12))
    assert deposits.num_triggers == 0
    assert deposits.num_deposits == 0
