"""Energy deposits: the interface between particle transport and light production.

Transport (gammas, neutrons, sources) produces :class:`Deposits`; the light
model turns them into photons and photo-electrons. Every deposit is one
charged particle that slows down locally (an electron or positron of a
Compton scattering, photo-absorption or pair production, or a recoil
nucleus); its whole kinetic energy is deposited, and the light model
integrates Birks quenching and Cherenkov emission along its slowing down.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Particle code of an electron or positron deposit.
ELECTRON = 0
#: Particle code of a recoil proton.
PROTON = 1
#: Particle code of a recoil carbon nucleus.
CARBON = 2

#: Trigger kind of a prompt trigger (gammas, and proton recoils of a neutron source).
PROMPT = 0
#: Trigger kind of a delayed trigger (the neutron-capture gamma).
DELAYED = 1


@dataclass(frozen=True)
class Deposits:
    """Charged-particle deposits grouped into detector triggers.

    Attributes
    ----------
    trigger : numpy.ndarray of int64, shape (num_deposits,)
        Index of the trigger each deposit belongs to, in ``[0, num_triggers)``.
    kinetic_energy : numpy.ndarray of float64, shape (num_deposits,)
        Initial kinetic energy of the charged particle in MeV.
    particle : numpy.ndarray of int8, shape (num_deposits,)
        :data:`ELECTRON`, :data:`PROTON` or :data:`CARBON`.
    trigger_kind : numpy.ndarray of int8, shape (num_triggers,)
        :data:`PROMPT` or :data:`DELAYED` for each trigger.
    """

    trigger: np.ndarray
    kinetic_energy: np.ndarray
    particle: np.ndarray
    trigger_kind: np.ndarray

    @property
    def num_triggers(self) -> int:
        """Number of triggers, including those without any deposit."""
        return int(self.trigger_kind.shape[0])

    @property
    def num_deposits(self) -> int:
        """Number of charged-particle deposits."""
        return int(self.kinetic_energy.shape[0])

    def deposited_energy(self) -> np.ndarray:
        """Return the total kinetic energy deposited in each trigger, in MeV, shape (num_triggers,)."""
        return np.bincount(self.trigger, weights=self.kinetic_energy, minlength=self.num_triggers)
