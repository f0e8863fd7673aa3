"""Composition and geometry of the liquid scintillator (LS).

The LS is JUNO's recipe: linear alkylbenzene (LAB) with 2.5 g/L PPO and 3 mg/L
bis-MSB. Density and elemental mass fractions are those of the JUNO LS as
given in JUNO Collaboration, "JUNO physics and detector", Prog. Part. Nucl.
Phys. 123 (2022) 103927. The calibration source sits at the centre of an LS
sphere of 17.7 m radius (the JUNO central-detector radius); a particle that
leaves the sphere is lost.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Avogadro constant in 1/mol (CODATA 2018, exact).
AVOGADRO = 6.02214076e23


@dataclass(frozen=True)
class Element:
    """A chemical element of the medium: atomic number, molar mass (g/mol) and mass fraction."""

    symbol: str
    atomic_number: int
    molar_mass: float
    mass_fraction: float


#: Density of the LS in g/cm^3.
DENSITY = 0.859

#: Radius of the LS sphere in cm.
SPHERE_RADIUS = 1770.0

#: Elements of the LS with their mass fractions; molar masses are IUPAC standard atomic weights.
ELEMENTS = (
    Element("H", 1, 1.008, 0.1220),
    Element("C", 6, 12.011, 0.8776),
    Element("O", 8, 15.999, 0.0002),
    Element("N", 7, 14.007, 0.0002),
)


def electrons_per_gram() -> float:
    """Return the number of electrons per gram of LS, sum of w_i Z_i / A_i times N_A."""
    return AVOGADRO * sum(e.mass_fraction * e.atomic_number / e.molar_mass for e in ELEMENTS)


def atoms_per_gram(symbol: str) -> float:
    """Return the number of atoms of element ``symbol`` per gram of LS."""
    for element in ELEMENTS:
        if element.symbol == symbol:
            return AVOGADRO * element.mass_fraction / element.molar_mass
    raise KeyError(f"element {symbol!r} is not in the LS; known: {[e.symbol for e in ELEMENTS]}")
