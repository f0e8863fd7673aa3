"""Typed, immutable objects of a data specification.

All objects here are frozen dataclasses built and validated by
:mod:`neuromct_tf.specs.loading`; they hold plain tuples so that they can be
compared and hashed, and convert to NumPy arrays on request.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Union

import numpy as np

from neuromct_tf.errors import InvalidInputError, SpecMismatchError

#: Names of the tuned parameters, in the order used by every array of points.
PARAMETER_NAMES = ("kB", "fC", "LY")


@dataclass(frozen=True)
class Parameter:
    """A tuned parameter of the LS response with its allowed range (the parameter box).

    Attributes
    ----------
    name : str
        Short name: ``kB`` (Birks' constant), ``fC`` (Cherenkov factor) or ``LY`` (light yield).
    description : str
        Human-readable name.
    unit : str
        Unit of the values: g/cm2/GeV for kB, dimensionless for fC, photons/MeV for LY.
    min, max : float
        Bounds of the box, inclusive.
    nominal : float
        Nominal value, inside the box.
    """

    name: str
    description: str
    unit: str
    min: float
    max: float
    nominal: float

    def contains(self, value: float) -> bool:
        """Return whether ``value`` lies in ``[min, max]``."""
        return self.min <= value <= self.max


@dataclass(frozen=True)
class Binning:
    """Binning of the observable, the number of photo-electrons in thousands (kNPE).

    Attributes
    ----------
    edges : tuple of float
        Strictly increasing bin edges in ``unit``; ``len(edges) = num_bins + 1``.
    unit : str
        Unit of the edges, ``kNPE``.
    """

    edges: tuple[float, ...]
    unit: str = "kNPE"

    @classmethod
    def uniform(cls, low: float, high: float, num_bins: int, unit: str = "kNPE") -> Binning:
        """Build ``num_bins`` bins of equal width between ``low`` and ``high``."""
        edges = np.linspace(low, high, num_bins + 1)
        return cls(edges=tuple(float(e) for e in np.round(edges, 12)), unit=unit)

    @property
    def num_bins(self) -> int:
        """Number of bins."""
        return len(self.edges) - 1

    @property
    def low(self) -> float:
        """Lower edge of the first bin."""
        return self.edges[0]

    @property
    def high(self) -> float:
        """Upper edge of the last bin."""
        return self.edges[-1]

    def edges_array(self) -> np.ndarray:
        """Return the edges as a float64 array of shape (num_bins + 1,)."""
        return np.asarray(self.edges, dtype=np.float64)

    def is_uniform(self) -> bool:
        """Return whether all bins have the same width (to 1e-9 relative)."""
        widths = np.diff(self.edges_array())
        return bool(np.allclose(widths, widths[0], rtol=1e-9, atol=0.0))

    def describe(self) -> str:
        """Return a one-line description, e.g. ``800 bins from 0.4 to 16.4 kNPE``."""
        kind = "" if self.is_uniform() else "variable "
        return f"{self.num_bins} {kind}bins from {self.low:g} to {self.high:g} {self.unit}"

    def to_dict(self) -> dict:
        """Return the plain-data form used in YAML and in file metadata."""
        if self.is_uniform():
            return {"unit": self.unit, "low": self.low, "high": self.high, "num_bins": self.num_bins}
        return {"unit": self.unit, "edges": list(self.edges)}


@dataclass(frozen=True)
class ProductGrid:
    """A grid of parameter points: the Cartesian product of one list of values per parameter.

    Points are ordered with kB slowest and LY fastest, so point ``i`` has axis
    indices ``numpy.unravel_index(i, shape)``.

    Attributes
    ----------
    name : str
        Grid name, e.g. ``training``.
    events : int
        Events simulated per source and point.
    axes : tuple of tuple of float
        Values of kB, fC and LY, in that order.
    """

    name: str
    events: int
    axes: tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]

    @property
    def shape(self) -> tuple[int, int, int]:
        """Number of values of kB, fC and LY."""
        return tuple(len(values) for values in self.axes)  # type: ignore[return-value]

    @property
    def num_points(self) -> int:
        """Number of parameter points."""
        return int(np.prod(self.shape))

    def points(self) -> np.ndarray:
        """Return all points as a float64 array of shape (num_points, 3), columns kB, fC, LY."""
        return np.array(list(itertools.product(*self.axes)), dtype=np.float64).reshape(-1, 3)

    def events_per_point(self) -> np.ndarray:
        """Return the events per source of each point, int64 array of shape (num_points,)."""
        return np.full(self.num_points, self.events, dtype=np.int64)

    def to_dict(self) -> dict:
        """Return the plain-data form used in YAML and in file metadata."""
        axes = {name: {"values": list(values)} for name, values in zip(PARAMETER_NAMES, self.axes)}
        return {"events": self.events, "axes": axes}


@dataclass(frozen=True)
class ExposureGrid:
    """Independent datasets at one parameter point, for several exposures.

    Points are ordered by exposure, then by dataset: point ``i`` is dataset
    ``i % num_datasets`` of exposure ``exposures[i // num_datasets]``.

    Attributes
    ----------
    name : str
        Grid name, e.g. ``testing2``.
    point : tuple of float
        The parameter point (kB, fC, LY).
    exposures : tuple of int
        Events per source of one dataset, for each exposure.
    num_datasets : int
        Independent datasets per exposure.
    """

    name: str
    point: tuple[float, float, float]
    exposures: tuple[int, ...]
    num_datasets: int

    @property
    def num_points(self) -> int:
        """Number of datasets over all exposures."""
        return len(self.exposures) * self.num_datasets

    def points(self) -> np.ndarray:
        """Return the point of every dataset, float64 array of shape (num_points, 3)."""
        return np.tile(np.asarray(self.point, dtype=np.float64), (self.num_points, 1))

    def events_per_point(self) -> np.ndarray:
        """Return the events per source of every dataset, int64 array of shape (num_points,)."""
        return np.repeat(np.asarray(self.exposures, dtype=np.int64), self.num_datasets)

    def to_dict(self) -> dict:
        """Return the plain-data form used in YAML and in file metadata."""
        return {
            "point": list(self.point),
            "exposures": list(self.exposures),
            "num_datasets": self.num_datasets,
        }


@dataclass(frozen=True)
class PointListGrid:
    """An explicit list of parameter points, e.g. a few high-statistics reference points.

    Attributes
    ----------
    name : str
        Grid name, e.g. ``reference``.
    events : int
        Events simulated per source and point.
    point_list : tuple of tuple of float
        The points (kB, fC, LY), in file order.
    """

    name: str
    events: int
    point_list: tuple[tuple[float, float, float], ...]

    @property
    def num_points(self) -> int:
        """Number of parameter points."""
        return len(self.point_list)

    def points(self) -> np.ndarray:
        """Return the points as a float64 array of shape (num_points, 3)."""
        return np.asarray(self.point_list, dtype=np.float64).reshape(-1, 3)

    def events_per_point(self) -> np.ndarray:
        """Return the events per source of each point, int64 array of shape (num_points,)."""
        return np.full(self.num_points, self.events, dtype=np.int64)

    def to_dict(self) -> dict:
        """Return the plain-data form used in YAML and in file metadata."""
        return {"events": self.events, "points": [list(point) for point in self.point_list]}


Grid = Union[ProductGrid, ExposureGrid, PointListGrid]


@dataclass(frozen=True)
class DataSpec:
    """A complete data specification: parameters, sources, binning and grids.

    Attributes
    ----------
    parameters : tuple of Parameter
        kB, fC and LY, in that order.
    sources : tuple of str
        Calibration sources; the position is the integer source id.
    binning : Binning
        Binning of the NPE observable.
    grids : tuple of ProductGrid or ExposureGrid
        Simulation grids, looked up by name with :meth:`grid`.
    """

    parameters: tuple[Parameter, Parameter, Parameter]
    sources: tuple[str, ...]
    binning: Binning
    grids: tuple[Grid, ...]

    @property
    def grid_names(self) -> tuple[str, ...]:
        """Names of the grids, in file order."""
        return tuple(grid.name for grid in self.grids)

    def grid(self, name: str) -> Grid:
        """Return the grid called ``name``.

        Raises
        ------
        InvalidInputError
            If the spec has no grid of that name.
        """
        for grid in self.grids:
            if grid.name == name:
                return grid
        raise InvalidInputError(
            f"unknown grid {name!r}; the spec defines: {', '.join(self.grid_names)}"
        )

    def parameter(self, name: str) -> Parameter:
        """Return the parameter called ``name`` (``kB``, ``fC`` or ``LY``)."""
        return self.parameters[PARAMETER_NAMES.index(name)]

    def box(self) -> np.ndarray:
        """Return the parameter box as a float64 array of shape (3, 2): rows kB, fC, LY; columns min, max."""
        return np.array([[p.min, p.max] for p in self.parameters], dtype=np.float64)

    def nominal(self) -> np.ndarray:
        """Return the nominal point (kB, fC, LY), float64 array of shape (3,)."""
        return np.array([p.nominal for p in self.parameters], dtype=np.float64)

    def source_id(self, name: str) -> int:
        """Return the integer id of source ``name``.

        Raises
        ------
        InvalidInputError
            If the source is not in the spec; the message lists the known sources.
        """
        if name not in self.sources:
            raise InvalidInputError(
                f"unknown source {name!r}; known sources: {', '.join(self.sources)}"
            )
        return self.sources.index(name)

    def check_point(self, point) -> np.ndarray:
        """Check that a point (kB, fC, LY) lies in the parameter box and return it as an array.

        Raises
        ------
        InvalidInputError
            If the point does not have three finite values or one is outside the box.
        """
        values = np.asarray(point, dtype=np.float64)
        if values.shape != (3,) or not np.all(np.isfinite(values)):
            raise InvalidInputError(
                f"invalid point {point!r}: give three finite numbers kB,fC,LY"
            )
        for parameter, value in zip(self.parameters, values):
            if not parameter.contains(value):
                raise InvalidInputError(
                    f"point {parameter.name}={value:g} is outside the parameter box "
                    f"[{parameter.min:g}, {parameter.max:g}] {parameter.unit}; "
                    "choose a value inside it or widen the box with --spec"
                )
        return values

    def to_dict(self) -> dict:
        """Return the plain-data form, as stored in file and model metadata."""
        return {
            "parameters": {
                p.name: {
                    "description": p.description,
                    "unit": p.unit,
                    "min": p.min,
                    "max": p.max,
                    "nominal": p.nominal,
                }
                for p in self.parameters
            },
            "sources": list(self.sources),
            "binning": self.binning.to_dict(),
            "grids": {grid.name: grid.to_dict() for grid in self.grids},
        }

    def check_compatible(self, other: DataSpec, what: str) -> None:
        """Check that ``other`` has the same parameter box, sources and binning as this spec.

        Grids may differ: a file simulated on the validation grid is compatible
        with a spec whose training grid is smaller, for example.

        Parameters
        ----------
        other : DataSpec
            The spec recorded in a file or model.
        what : str
            The file or model that ``other`` comes from, used in the message.

        Raises
        ------
        SpecMismatchError
            Naming what differs, with both values.
        """
        if self.sources != other.sources:
            raise SpecMismatchError(
                f"{what} was made for sources {list(other.sources)}, but the spec in use has "
                f"{list(self.sources)}; use the same --spec for both"
            )
        for mine, theirs in zip(self.parameters, other.parameters):
            if (mine.min, mine.max) != (theirs.min, theirs.max):
                raise SpecMismatchError(
                    f"{what} was made with the {mine.name} box [{theirs.min:g}, {theirs.max:g}], "
                    f"but the spec in use has [{mine.min:g}, {mine.max:g}]; use the same --spec for both"
                )
        same_binning = self.binning.num_bins == other.binning.num_bins and np.allclose(
            self.binning.edges_array(), other.binning.edges_array(), rtol=1e-9, atol=1e-12
        )
        if not same_binning or self.binning.unit != other.binning.unit:
            raise SpecMismatchError(
                f"{what} was made with the binning {other.binning.describe()}, but the spec in use "
                f"has {self.binning.describe()}; use the same --spec for both"
            )
