"""Calibration files: the observed NPE of each source, the input of the fit.

Layouts
-------
A :class:`CalibrationLayout` gives the location of each source's data in a ROOT file:

- ``tree``: a TTree per source with one entry per trigger and a flat numeric
  branch of NPE values;
- ``hist``: a TH1 per source, counts in NPE bins (unweighted).

The object name may contain ``{source}``, replaced by the source name; a name
without it (such as JUNO's ``TRec``) needs one file per source. The unit of the
NPE values (branch values or histogram axis) is ``kNPE`` (thousands of
photo-electrons) or ``NPE`` (photo-electrons). The presets are

==========  ======  ============  =========  =====
preset      kind    object        branch     unit
==========  ======  ============  =========  =====
``tree``    tree    ``{source}``  ``npe``    kNPE
``hist``    hist    ``{source}``  --         kNPE
``juno``    tree    ``TRec``      ``m_NPE``  NPE
==========  ======  ============  =========  =====

:func:`read_calibration` returns the counts of each source in the spec's
binning. Entries outside the binning are counted (``num_underflow``,
``num_overflow``), never silently dropped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import boost_histogram as bh
import numpy as np

from neuromct_tf.errors import InvalidInputError
from neuromct_tf.io.atomic import atomic_output, check_output_path
from neuromct_tf.io.metadata import FileMetadata, read_metadata, write_metadata
from neuromct_tf.io.rootfile import create_root, get_object, open_root, reading
from neuromct_tf.specs import Binning, DataSpec

#: Factor from each NPE unit to kNPE.
NPE_UNITS = {"kNPE": 1.0, "NPE": 1e-3}

# Relative tolerance when matching histogram edges to the spec's edges.
_EDGE_RTOL = 1e-6


@dataclass(frozen=True)
class CalibrationLayout:
    """Location of the NPE data of each source in a calibration file.

    Attributes
    ----------
    kind : str
        ``tree`` or ``hist``.
    object_name : str
        Name of the TTree or TH1; ``{source}`` is replaced by the source name.
    branch : str
        NPE branch of a tree layout (ignored for ``hist``).
    npe_unit : str
        ``kNPE`` or ``NPE``: unit of the branch values or the histogram axis.
    """

    kind: str = "tree"
    object_name: str = "{source}"
    branch: str = "npe"
    npe_unit: str = "kNPE"

    def __post_init__(self):
        if self.kind not in ("tree", "hist"):
            raise InvalidInputError(f"unknown layout kind {self.kind!r}; use 'tree' or 'hist'")
        if self.npe_unit not in NPE_UNITS:
            raise InvalidInputError(f"unknown NPE unit {self.npe_unit!r}; use one of {list(NPE_UNITS)}")

    @property
    def per_source_files(self) -> bool:
        """Whether the object name lacks ``{source}``, so each source needs its own file."""
        return "{source}" not in self.object_name

    def object_for(self, source: str) -> str:
        """Return the object name of ``source``."""
        return self.object_name.replace("{source}", source)

    def with_options(self, object_name: str | None = None, branch: str | None = None, npe_unit: str | None = None):
        """Return a copy with the given fields replaced (``None`` keeps a field)."""
        changes = {"object_name": object_name, "branch": branch, "npe_unit": npe_unit}
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


LAYOUT_PRESETS = {
    "tree": CalibrationLayout("tree", "{source}", "npe", "kNPE"),
    "hist": CalibrationLayout("hist", "{source}", "", "kNPE"),
    "juno": CalibrationLayout("tree", "TRec", "m_NPE", "NPE"),
}


def layout_preset(name: str) -> CalibrationLayout:
    """Return the preset layout ``name``.

    Raises
    ------
    InvalidInputError
        If there is no such preset.
    """
    if name not in LAYOUT_PRESETS:
        raise InvalidInputError(f"unknown layout {name!r}; choose one of {', '.join(LAYOUT_PRESETS)}")
    return LAYOUT_PRESETS[name]


@dataclass(frozen=True)
class SourceCounts:
    """Observed counts of one source in the spec's binning.

    Attributes
    ----------
    source : str
        Source name.
    counts : numpy.ndarray of int64, shape (num_bins,)
        Entries per bin.
    num_underflow, num_overflow : int
        Entries below the first and above the last edge.
    path : pathlib.Path
        File read.
    object_name : str
        TTree or TH1 read.
    """

    source: str
    counts: np.ndarray
    num_underflow: int
    num_overflow: int
    path: Path
    object_name: str

    @property
    def num_entries(self) -> int:
        """All entries, in range or not."""
        return int(self.counts.sum()) + self.num_underflow + self.num_overflow


@dataclass(frozen=True)
class CalibrationData:
    """Observed spectra of the sources found in a calibration input.

    Attributes
    ----------
    sources : tuple of SourceCounts
        In the spec's source order; sources absent from the input are left out.
    missing : tuple of str
        Spec sources not found in the input.
    metadata : FileMetadata or None
        Provenance, when the file was written by neuromct-tf (first file with a record).
    """

    sources: tuple[SourceCounts, ...]
    missing: tuple[str, ...]
    metadata: FileMetadata | None

    def counts(self) -> np.ndarray:
        """Return the counts as an int64 array of shape (num_sources_found, num_bins)."""
        return np.stack([s.counts for s in self.sources])

    @property
    def source_names(self) -> tuple[str, ...]:
        """Names of the sources found."""
        return tuple(s.source for s in self.sources)


def make_histogram(binning: Binning) -> bh.Histogram:
    """Return an empty boost-histogram in the spec's binning, with under- and overflow."""
    edges = binning.edges_array()
    axis = bh.axis.Regular(binning.num_bins, binning.low, binning.high) if binning.is_uniform() else bh.axis.Variable(edges)
    return bh.Histogram(axis, storage=bh.storage.Double())


def histogram_counts(histogram: bh.Histogram) -> tuple[np.ndarray, int, int]:
    """Return ``(counts, num_underflow, num_overflow)`` of a filled 1-D boost-histogram as integers."""
    flow = np.rint(histogram.values(flow=True)).astype(np.int64)
    return flow[1:-1], int(flow[0]), int(flow[-1])


def read_calibration(
    inputs: str | Path | Mapping[str, str | Path],
    spec: DataSpec,
    layout: CalibrationLayout = LAYOUT_PRESETS["tree"],
    step_size: int = 1_000_000,
) -> CalibrationData:
    """Read the calibration spectra of all spec sources present in ``inputs``.

    Parameters
    ----------
    inputs : path or mapping of source name to path
        One file holding every source (the layout's object name must contain
        ``{source}``), or one file per source.
    spec : DataSpec
        Gives the source list and the binning.
    layout : CalibrationLayout
        Object names, branch and NPE unit.
    step_size : int
        Entries read per chunk from a tree; memory stays bounded by it.

    Raises
    ------
    InvalidInputError
        For a missing, foreign or damaged file, a missing object or branch, or
        a branch that is not flat numeric. For NaN or negative NPE, a weighted
        histogram, or one whose binning does not align with the spec's. For an
        unknown source name, or an input with none of the spec's sources.
    SpecMismatchError
        If the file records a spec with another binning, box or source list.
    """
    if isinstance(inputs, Mapping):
        files = {source: Path(path) for source, path in inputs.items()}
        for source in files:
            spec.source_id(source)
        wanted = [s for s in spec.sources if s in files]
    else:
        if layout.per_source_files:
            raise InvalidInputError(
                f"layout object name {layout.object_name!r} has no '{{source}}', so each source needs its own "
                "file: give them as SOURCE=PATH"
            )
        files = {source: Path(inputs) for source in spec.sources}
        wanted = list(spec.sources)

    found: list[SourceCounts] = []
    metadata = None
    for source in wanted:
        path = files[source]
        directory = open_root(path)
        with reading(path, "the metadata"):
            file_metadata = read_metadata(directory, path)
        if file_metadata is not None:
            spec.check_compatible(file_metadata.data_spec(str(path)), what=str(path))
            metadata = metadata or file_metadata
        name = layout.object_for(source)
        if not isinstance(inputs, Mapping) and name not in directory.keys(cycle=False):
            continue
        if layout.kind == "tree":
            found.append(_read_tree(directory, path, name, source, layout, spec.binning, step_size))
        else:
            found.append(_read_hist(directory, path, name, source, layout, spec.binning))

    if not found:
        where = inputs if not isinstance(inputs, Mapping) else ", ".join(str(p) for p in files.values())
        expected = ", ".join(layout.object_for(s) for s in spec.sources)
        raise InvalidInputError(
            f"{where} has none of the sources {list(spec.sources)}: expected {layout.kind} objects named "
            f"{expected}; set the layout with --layout/--object-name"
        )
    names = {s.source for s in found}
    missing = tuple(s for s in spec.sources if s not in names)
    return CalibrationData(sources=tuple(found), missing=missing, metadata=metadata)


def _read_tree(directory, path: Path, name: str, source: str, layout: CalibrationLayout, binning: Binning, step_size: int):
    tree = get_object(directory, name, "TTree", path)
    if layout.branch not in tree.keys():
        raise InvalidInputError(
            f"tree {name!r} in {path} has no branch {layout.branch!r}; its branches are {tree.keys()}. "
            "Set the branch with --branch"
        )
    branch = tree[layout.branch]
    dtype = getattr(branch.interpretation, "from_dtype", None)
    if dtype is None or dtype.kind not in "fiu" or dtype.shape != ():
        raise InvalidInputError(
            f"branch {layout.branch!r} of tree {name!r} in {path} has type {branch.typename}, "
            "not a flat numeric branch (one number per entry); give the NPE branch"
        )
    histogram = make_histogram(binning)
    scale = NPE_UNITS[layout.npe_unit]
    with reading(path, f"branch {layout.branch!r} of tree {name!r}"):
        for chunk in branch.iterate(step_size=step_size, library="np"):
            values = np.asarray(chunk[layout.branch], dtype=np.float64)
            _check_npe_values(values, path, name, layout.branch)
            histogram.fill(values * scale)
    counts, underflow, overflow = histogram_counts(histogram)
    return SourceCounts(source, counts, underflow, overflow, path, name)


def _check_npe_values(values: np.ndarray, path: Path, name: str, branch: str) -> None:
    num_nan = int(np.count_nonzero(~np.isfinite(values)))
    if num_nan:
        raise InvalidInputError(
            f"branch {branch!r} of tree {name!r} in {path} has {num_nan} NaN or infinite NPE values; "
            "remove those entries"
        )
    num_negative = int(np.count_nonzero(values < 0))
    if num_negative:
        raise InvalidInputError(
            f"branch {branch!r} of tree {name!r} in {path} has {num_negative} negative NPE values "
            f"(minimum {values.min():g}); NPE cannot be negative, check the branch"
        )


def _read_hist(directory, path: Path, name: str, source: str, layout: CalibrationLayout, binning: Binning):
    hist = get_object(directory, name, "TH1", path)
    with reading(path, f"histogram {name!r}"):
        values = np.asarray(hist.values(flow=True), dtype=np.float64)
        variances = np.asarray(hist.variances(flow=True), dtype=np.float64)
        edges = np.asarray(hist.axis().edges(), dtype=np.float64) * NPE_UNITS[layout.npe_unit]
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise InvalidInputError(f"histogram {name!r} in {path} has negative or NaN bin contents; the fit needs counts")
    if np.any(values != np.rint(values)) or not np.allclose(variances, values, rtol=1e-6, atol=1e-9):
        raise InvalidInputError(
            f"histogram {name!r} in {path} is weighted (non-integer contents or sum of squared weights "
            "different from the contents); the Poisson likelihood needs raw counts"
        )
    counts = np.rint(values).astype(np.int64)
    rebinned, underflow, overflow = rebin_counts(counts, edges, binning, f"histogram {name!r} in {path}")
    return SourceCounts(source, rebinned, underflow, overflow, path, name)


def rebin_counts(counts_with_flow: np.ndarray, edges: np.ndarray, binning: Binning, what: str):
    """Sum the bins of a histogram into the spec's binning.

    Parameters
    ----------
    counts_with_flow : numpy.ndarray of int64, shape (len(edges) + 1,)
        Counts including the underflow (first) and overflow (last) bins.
    edges : numpy.ndarray, shape (num_input_bins + 1,)
        Input edges in kNPE. Every spec edge must coincide with one of them
        (to a relative 1e-6), as when the input binning is a refinement of the spec's.
    binning : Binning
        The spec's binning.
    what : str
        The histogram, for messages.

    Returns
    -------
    counts : numpy.ndarray of int64, shape (binning.num_bins,)
    num_underflow, num_overflow : int
        Input entries below and above the spec's range, flow bins included.

    Raises
    ------
    InvalidInputError
        If the edges do not align; the message gives both binnings.
    """
    spec_edges = binning.edges_array()
    positions = np.searchsorted(edges, spec_edges)
    positions = np.clip(positions, 0, len(edges) - 1)
    nearer = np.where(
        (positions > 0) & (np.abs(edges[positions - 1] - spec_edges) < np.abs(edges[positions] - spec_edges)),
        positions - 1,
        positions,
    )
    tolerance = _EDGE_RTOL * np.maximum(np.abs(spec_edges), 1.0)
    if not np.all(np.abs(edges[nearer] - spec_edges) <= tolerance):
        raise InvalidInputError(
            f"{what} has {len(edges) - 1} bins from {edges[0]:g} to {edges[-1]:g} kNPE "
            f"(width {edges[1] - edges[0]:g}), which do not align with the spec binning "
            f"{binning.describe()}; rebin it so that every spec edge is a bin edge"
        )
    # Entry i of ``nearer`` is the index of the input edge equal to spec edge i.
    # Input bin j (0-based, without flow) lies between input edges j and j + 1.
    inner = counts_with_flow[1:-1]
    cumulative = np.concatenate([[0], np.cumsum(inner)])
    rebinned = np.diff(cumulative[nearer])
    underflow = int(counts_with_flow[0] + cumulative[nearer[0]])
    overflow = int(counts_with_flow[-1] + cumulative[-1] - cumulative[nearer[-1]])
    return rebinned.astype(np.int64), underflow, overflow


def write_calibration(
    path: str | Path,
    npe: Mapping[str, np.ndarray],
    layout: CalibrationLayout,
    spec: DataSpec,
    metadata: FileMetadata,
    overwrite: bool = False,
) -> list[Path]:
    """Write per-source NPE values (kNPE) in a calibration layout, atomically.

    With a layout whose object name has ``{source}``, all sources go into
    ``path``. Otherwise each source goes into its own file, named by inserting
    ``_SOURCE`` before the suffix of ``path`` (``calib.root`` becomes
    ``calib_Cs137.root``).

    Returns
    -------
    list of pathlib.Path
        The files written.

    Raises
    ------
    OutputError
        If an output exists and ``overwrite`` is false, or its directory is not writable.
    """
    path = Path(path)
    if layout.per_source_files:
        groups = {path.with_name(f"{path.stem}_{source}{path.suffix}"): {source: values} for source, values in npe.items()}
    else:
        groups = {path: dict(npe)}
    # Every target is checked before any is written, so that nothing is written on this error.
    for target in groups:
        check_output_path(target, overwrite)
    for target, group in groups.items():
        with atomic_output(target, overwrite) as temporary, create_root(temporary) as file:
            write_metadata(file, metadata)
            for source, values in group.items():
                _write_source(file, source, np.asarray(values, dtype=np.float64), layout, spec.binning)
    return list(groups)


def _write_source(file, source: str, values_knpe: np.ndarray, layout: CalibrationLayout, binning: Binning) -> None:
    name = layout.object_for(source)
    values = values_knpe / NPE_UNITS[layout.npe_unit]
    if layout.kind == "tree":
        tree = file.mktree(name, {layout.branch: np.float64}, title=f"{source} calibration data")
        tree.extend({layout.branch: values})
        return
    scale = NPE_UNITS[layout.npe_unit]
    edges = binning.edges_array() / scale
    histogram = bh.Histogram(bh.axis.Variable(edges), storage=bh.storage.Double())
    histogram.fill(values)
    file[name] = histogram
