"""Loading and validation of data-spec YAML files.

:func:`load_spec` reads ``data_specs/default.yaml``, merges a user file over it
and builds a validated :class:`~neuromct_tf.specs.model.DataSpec`. The merge
is key by key, with two exceptions: a grid axis and a binning given with
``edges`` replace the default entry whole, so that a user file may switch an
axis from ``start/step/num`` to ``values`` without mixing the two.

Every error is an :class:`~neuromct_tf.errors.InvalidSpecError` whose message
names the file, the dotted key and the reason.
"""

from __future__ import annotations

import copy
import functools
import importlib.resources
import json
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from neuromct_tf.errors import InvalidSpecError
from neuromct_tf.specs.model import (
    PARAMETER_NAMES,
    Binning,
    DataSpec,
    ExposureGrid,
    Parameter,
    PointListGrid,
    ProductGrid,
)

DEFAULT_SPEC_RESOURCE = "default.yaml"

_PARAMETER_KEYS = {"description", "unit", "min", "max", "nominal"}
_BINNING_KEYS = {"unit", "low", "high", "num_bins", "edges"}
_PRODUCT_GRID_KEYS = {"events", "axes"}
_EXPOSURE_GRID_KEYS = {"point", "exposures", "num_datasets"}
_POINT_LIST_GRID_KEYS = {"events", "points"}
_AXIS_KEYS = {"start", "step", "num", "values"}
_TOP_KEYS = {"parameters", "sources", "binning", "grids"}

# Decimals kept when generating axis values from start + i * step, so that
# 6 + 3 * 0.9 is stored as 8.7 and not 8.700000000000001.
_AXIS_DECIMALS = 10


def _read_default_dict() -> dict:
    text = importlib.resources.files("neuromct_tf.data_specs").joinpath(DEFAULT_SPEC_RESOURCE).read_text()
    return yaml.safe_load(text)


@functools.lru_cache(maxsize=1)
def default_spec() -> DataSpec:
    """Return the default spec shipped in ``data_specs/default.yaml``."""
    return spec_from_dict(_read_default_dict(), origin="data_specs/default.yaml")


def load_spec(path: str | Path | None = None) -> DataSpec:
    """Load the default spec, with the user spec file ``path`` merged over it.

    Parameters
    ----------
    path : str or pathlib.Path, optional
        A YAML file overriding any part of the default spec. ``None`` returns
        the default spec.

    Returns
    -------
    DataSpec
        The merged, validated spec.

    Raises
    ------
    InvalidSpecError
        If the file is missing, is not YAML, or the merged spec is invalid.
    """
    if path is None:
        return default_spec()
    path = Path(path)
    try:
        user = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise InvalidSpecError(f"spec file {path} not found; check the --spec path") from None
    except yaml.YAMLError as error:
        reason = str(error).replace("\n", " ")
        raise InvalidSpecError(f"spec file {path} is not valid YAML: {reason}") from None
    if user is None:
        user = {}
    if not isinstance(user, dict):
        raise InvalidSpecError(f"spec file {path}: the top level must be a mapping of keys {sorted(_TOP_KEYS)}")
    merged = merge_spec_dicts(_read_default_dict(), user)
    return spec_from_dict(merged, origin=str(path))


def merge_spec_dicts(base: dict, override: dict) -> dict:
    """Return ``base`` with ``override`` merged over it (neither argument is modified)."""
    merged = copy.deepcopy(base)
    _merge_into(merged, override, path=())
    return merged


def _merge_into(target: dict, override: dict, path: tuple[str, ...]) -> None:
    for key, value in override.items():
        key_path = path + (str(key),)
        replaces_whole = (
            len(key_path) == 4 and key_path[0] == "grids" and key_path[2] == "axes"
        ) or (key_path == ("binning",) and isinstance(value, dict) and "edges" in value)
        if isinstance(value, dict) and isinstance(target.get(key), dict) and not replaces_whole:
            _merge_into(target[key], value, key_path)
        else:
            target[key] = copy.deepcopy(value)


def spec_from_json(text: str, origin: str) -> DataSpec:
    """Build a spec from the JSON text stored in a file or model by :meth:`DataSpec.to_dict`."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidSpecError(f"{origin}: the stored spec is not valid JSON ({error})") from None
    return spec_from_dict(data, origin=origin)


def spec_from_dict(data: dict, origin: str) -> DataSpec:
    """Validate a complete spec mapping and build the :class:`DataSpec`.

    Parameters
    ----------
    data : dict
        Mapping with the keys ``parameters``, ``sources``, ``binning`` and ``grids``.
    origin : str
        File the mapping comes from, used in error messages.

    Raises
    ------
    InvalidSpecError
        Naming ``origin``, the dotted key and the reason.
    """
    checker = _SpecChecker(origin)
    checker.keys(data, _TOP_KEYS, "", required=_TOP_KEYS)
    parameters = tuple(checker.parameter(data["parameters"], name) for name in PARAMETER_NAMES)
    checker.keys(data["parameters"], set(PARAMETER_NAMES), "parameters", required=set(PARAMETER_NAMES))
    sources = checker.sources(data["sources"])
    binning = checker.binning(data["binning"])
    grids_data = data["grids"]
    if not isinstance(grids_data, dict):
        checker.fail("grids", "must be a mapping from grid name to grid")
    grids = tuple(checker.grid(name, grid, parameters) for name, grid in grids_data.items())
    return DataSpec(parameters=parameters, sources=sources, binning=binning, grids=grids)


class _SpecChecker:
    """Validation helpers that raise :class:`InvalidSpecError` with the file and key."""

    def __init__(self, origin: str):
        self.origin = origin

    def fail(self, key: str, reason: str):
        raise InvalidSpecError(f"invalid spec {self.origin}: {key}: {reason}")

    def keys(self, data: Any, allowed: set[str], key: str, required: set[str] = frozenset()) -> None:
        if not isinstance(data, dict):
            self.fail(key or "(top level)", f"must be a mapping with keys {sorted(allowed)}")
        for name in data:
            if name not in allowed:
                where = f"{key}.{name}" if key else str(name)
                self.fail(where, f"unknown key; allowed keys here: {sorted(allowed)}")
        for name in required:
            if name not in data:
                self.fail(f"{key}.{name}" if key else name, "missing required key")

    def number(self, value: Any, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            self.fail(key, f"{value!r} is not a finite number")
        return float(value)

    def count(self, value: Any, key: str, minimum: int = 1) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(key, f"{value!r} is not an integer >= {minimum}")
        return int(value)

    def parameter(self, data: Any, name: str) -> Parameter:
        key = f"parameters.{name}"
        if not isinstance(data, dict) or name not in data:
            self.fail(key, "missing required key")
        entry = data[name]
        self.keys(entry, _PARAMETER_KEYS, key, required={"min", "max", "nominal"})
        low = self.number(entry["min"], f"{key}.min")
        high = self.number(entry["max"], f"{key}.max")
        nominal = self.number(entry["nominal"], f"{key}.nominal")
        if not low < high:
            self.fail(key, f"min {low:g} must be below max {high:g}")
        if not low <= nominal <= high:
            self.fail(f"{key}.nominal", f"{nominal:g} is outside the box [{low:g}, {high:g}]")
        return Parameter(
            name=name,
            description=str(entry.get("description", name)),
            unit=str(entry.get("unit", "")),
            min=low,
            max=high,
            nominal=nominal,
        )

    def sources(self, data: Any) -> tuple[str, ...]:
        if not isinstance(data, list) or not data:
            self.fail("sources", "must be a non-empty list of source names")
        names = tuple(str(name) for name in data)
        if len(set(names)) != len(names):
            self.fail("sources", f"names must be unique, got {list(names)}")
        return names

    def binning(self, data: Any) -> Binning:
        self.keys(data, _BINNING_KEYS, "binning")
        unit = str(data.get("unit", "kNPE"))
        if unit != "kNPE":
            self.fail("binning.unit", f"{unit!r} is not supported; the observable is in kNPE")
        if "edges" in data:
            if any(k in data for k in ("low", "high", "num_bins")):
                self.fail("binning", "give either edges or low/high/num_bins, not both")
            if not isinstance(data["edges"], list) or len(data["edges"]) < 2:
                self.fail("binning.edges", "must be a list of at least two edges")
            edges = [self.number(e, "binning.edges") for e in data["edges"]]
            if np.any(np.diff(edges) <= 0):
                self.fail("binning.edges", "bin edges must be strictly increasing")
            return Binning(edges=tuple(edges), unit=unit)
        self.keys(data, _BINNING_KEYS, "binning", required={"low", "high", "num_bins"})
        low = self.number(data["low"], "binning.low")
        high = self.number(data["high"], "binning.high")
        num_bins = self.count(data["num_bins"], "binning.num_bins")
        if not low < high:
            self.fail("binning", f"bin edges must be increasing: low {low:g} is not below high {high:g}")
        if low < 0:
            self.fail("binning.low", f"{low:g} is negative; NPE cannot be negative")
        return Binning.uniform(low, high, num_bins, unit=unit)

    def axis(self, data: Any, key: str, parameter: Parameter) -> tuple[float, ...]:
        self.keys(data, _AXIS_KEYS, key)
        if "values" in data:
            if any(k in data for k in ("start", "step", "num")):
                self.fail(key, "give either values or start/step/num, not both")
            if not isinstance(data["values"], list):
                self.fail(f"{key}.values", "must be a list of numbers")
            values = [self.number(v, f"{key}.values") for v in data["values"]]
        else:
            self.keys(data, _AXIS_KEYS, key, required={"start", "step", "num"})
            start = self.number(data["start"], f"{key}.start")
            step = self.number(data["step"], f"{key}.step")
            num = self.count(data["num"], f"{key}.num", minimum=0)
            values = [round(start + i * step, _AXIS_DECIMALS) for i in range(num)]
        if not values:
            self.fail(key, "the grid axis is empty; give at least one value")
        if np.any(np.diff(values) <= 0):
            self.fail(key, f"values must be strictly increasing, got {values}")
        for value in values:
            if not parameter.contains(value):
                self.fail(
                    key,
                    f"value {value:g} is outside the {parameter.name} box "
                    f"[{parameter.min:g}, {parameter.max:g}]",
                )
        return tuple(values)

    def grid(self, name: str, data: Any, parameters: tuple[Parameter, ...]):
        key = f"grids.{name}"
        if not isinstance(data, dict):
            self.fail(key, "must be a mapping")
        if "axes" in data:
            self.keys(data, _PRODUCT_GRID_KEYS, key, required={"axes"})
            self.keys(data["axes"], set(PARAMETER_NAMES), f"{key}.axes", required=set(PARAMETER_NAMES))
            axes = tuple(
                self.axis(data["axes"][p.name], f"{key}.axes.{p.name}", p) for p in parameters
            )
            events = self.count(data.get("events", 10000), f"{key}.events")
            return ProductGrid(name=str(name), events=events, axes=axes)
        if "exposures" in data:
            self.keys(data, _EXPOSURE_GRID_KEYS, key, required={"exposures"})
            point = self.exposure_point(data.get("point", "nominal"), f"{key}.point", parameters)
            exposures = data["exposures"]
            if not isinstance(exposures, list) or not exposures:
                self.fail(f"{key}.exposures", "must be a non-empty list of event counts")
            exposures = tuple(self.count(e, f"{key}.exposures") for e in exposures)
            num_datasets = self.count(data.get("num_datasets", 1000), f"{key}.num_datasets")
            return ExposureGrid(name=str(name), point=point, exposures=exposures, num_datasets=num_datasets)
        if "points" in data:
            self.keys(data, _POINT_LIST_GRID_KEYS, key, required={"points"})
            if not isinstance(data["points"], list) or not data["points"]:
                self.fail(f"{key}.points", "must be a non-empty list of [kB, fC, LY] points")
            points = tuple(
                self.exposure_point(point, f"{key}.points[{index}]", parameters)
                for index, point in enumerate(data["points"])
            )
            events = self.count(data.get("events", 10000), f"{key}.events")
            return PointListGrid(name=str(name), events=events, point_list=points)
        self.fail(
            key,
            "a grid needs 'axes' (a product grid), 'exposures' (datasets at one point) or 'points' (a list of points)",
        )

    def exposure_point(self, data: Any, key: str, parameters: tuple[Parameter, ...]):
        """Validate a point given as ``nominal`` or ``[kB, fC, LY]``."""
        if data == "nominal":
            return tuple(p.nominal for p in parameters)
        if not isinstance(data, list) or len(data) != 3:
            self.fail(key, f"{data!r} must be 'nominal' or a list [kB, fC, LY]")
        point = tuple(self.number(v, key) for v in data)
        for parameter, value in zip(parameters, point):
            if not parameter.contains(value):
                self.fail(
                    key,
                    f"{parameter.name}={value:g} is outside the box [{parameter.min:g}, {parameter.max:g}]",
                )
        return point
