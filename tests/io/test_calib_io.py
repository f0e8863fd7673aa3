"""Calibration files: the three layouts, files from other tools, rebinning and bad content."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot

from neuromct_tf.errors import InvalidInputError, SpecMismatchError
from neuromct_tf.io.calib import CalibrationLayout, layout_preset, read_calibration, rebin_counts, write_calibration
from neuromct_tf.io.metadata import FileMetadata
from neuromct_tf.specs import Binning, default_spec, load_spec


def expected_counts(values_knpe, binning):
    """Counts, underflow and overflow from numpy alone, independent of the reader's histogramming."""
    edges = binning.edges_array()
    counts, _ = np.histogram(values_knpe, bins=edges)
    # np.histogram puts values equal to the last edge into the last bin; none of the test values do that.
    return counts, int(np.sum(values_knpe < edges[0])), int(np.sum(values_knpe >= edges[-1]))


@pytest.fixture
def spectra():
    rng = np.random.default_rng(7)
    spec = default_spec()
    # Each source includes a few values below 0.4 and above 16.4 kNPE to exercise under- and overflow.
    return {
        source: np.concatenate([rng.normal(1.0 + 2.5 * i, 0.1, 2000), [0.1, 0.2, 17.0]])
        for i, source in enumerate(spec.sources)
    }


@pytest.mark.parametrize("preset", ["tree", "hist", "juno"])
def test_layout_round_trip(tmp_path, spectra, preset):
    spec = default_spec()
    layout = layout_preset(preset)
    metadata = FileMetadata("calibration", spec.to_dict(), seed=3)
    paths = write_calibration(tmp_path / "calib.root", spectra, layout, spec, metadata)
    inputs = paths[0] if len(paths) == 1 else dict(zip(spec.sources, paths))
    data = read_calibration(inputs, spec, layout)
    assert data.source_names == spec.sources
    assert data.missing == ()
    assert data.metadata.seed == 3
    for source in data.sources:
        counts, underflow, overflow = expected_counts(spectra[source.source], spec.binning)
        np.testing.assert_array_equal(source.counts, counts)
        assert source.num_underflow == underflow == 2
        assert source.num_overflow == overflow == 1
        assert source.num_entries == 2003


def test_juno_layout_writes_one_file_per_source(tmp_path, spectra):
    spec = default_spec()
    metadata = FileMetadata("calibration", spec.to_dict())
    paths = write_calibration(tmp_path / "calib.root", spectra, layout_preset("juno"), spec, metadata)
    assert [p.name for p in paths] == [f"calib_{s}.root" for s in spec.sources]
    with uproot.open(paths[0]) as file:
        # m_NPE counts photo-electrons, not thousands.
        npe = file["TRec"]["m_NPE"].array(library="np")
    np.testing.assert_allclose(npe, spectra["Cs137"] * 1000)


def test_foreign_juno_files_with_integer_branch(tmp_path):
    """Files written by plain uproot, as another tool would: no metadata, int32 NPE in photo-electrons."""
    spec = default_spec()
    rng = np.random.default_rng(11)
    inputs, raw = {}, {}
    for source, peak in (("Cs137", 1000), ("Co60", 4000)):
        values = rng.poisson(peak, 5000).astype(np.int32)
        path = tmp_path / f"{source}_rec.root"
        with uproot.recreate(path) as file:
            file.mktree("TRec", {"m_NPE": np.int32, "m_QEn": np.float32})
            file["TRec"].extend({"m_NPE": values, "m_QEn": values.astype(np.float32) / 1600})
        inputs[source], raw[source] = path, values
    data = read_calibration(inputs, spec, layout_preset("juno"))
    assert data.source_names == ("Cs137", "Co60")
    assert data.missing == ("K40", "AmBe", "AmC")
    assert data.metadata is None
    for source in data.sources:
        counts, underflow, overflow = expected_counts(raw[source.source] / 1000.0, spec.binning)
        np.testing.assert_array_equal(source.counts, counts)
        assert (source.num_underflow, source.num_overflow) == (underflow, overflow)


def test_custom_names_and_subset(tmp_path):
    spec = default_spec()
    path = tmp_path / "mine.root"
    with uproot.recreate(path) as file:
        file.mktree("calib_K40", {"charge": np.float64})
        file["calib_K40"].extend({"charge": np.full(10, 2.345)})
    layout = CalibrationLayout("tree", "calib_{source}", "charge", "kNPE")
    data = read_calibration(path, spec, layout)
    assert data.source_names == ("K40",)
    # (2.345 - 0.4) / 0.02 = 97.25, so all ten entries fall in bin 97.
    assert data.sources[0].counts[97] == 10


def test_fine_histogram_is_rebinned(tmp_path):
    spec = default_spec()
    rng = np.random.default_rng(5)
    values = rng.normal(3.0, 0.3, 10000)
    # 0.01 kNPE bins from 0 to 20: every spec edge (0.4 + 0.02 k) is one of them.
    fine_edges = np.round(np.arange(0, 2001) * 0.01, 10)
    fine_counts, _ = np.histogram(values, bins=fine_edges)
    path = tmp_path / "hist.root"
    with uproot.recreate(path) as file:
        file["Cs137"] = (fine_counts.astype(np.float64), fine_edges)
    data = read_calibration(path, spec, layout_preset("hist"))
    counts, underflow, overflow = expected_counts(values, spec.binning)
    np.testing.assert_array_equal(data.sources[0].counts, counts)
    assert data.sources[0].num_underflow == underflow
    assert data.sources[0].num_overflow == overflow


def test_histogram_in_npe_units(tmp_path):
    spec = default_spec()
    edges = np.arange(0, 20001, 20.0)  # photo-electrons, 20 PE = 0.02 kNPE
    counts = np.zeros(len(edges) - 1)
    counts[100] = 42  # 2000-2020 PE
    path = tmp_path / "hist_pe.root"
    with uproot.recreate(path) as file:
        file["h_AmBe"] = (counts, edges)
    layout = CalibrationLayout("hist", "h_{source}", "", "NPE")
    data = read_calibration(path, spec, layout)
    assert data.sources[0].source == "AmBe"
    assert data.sources[0].counts[80] == 42  # (2.0 - 0.4) / 0.02 = bin 80


def test_misaligned_histogram_rejected(tmp_path):
    spec = default_spec()
    path = tmp_path / "coarse.root"
    with uproot.recreate(path) as file:
        file["Cs137"] = (np.ones(333), np.linspace(0.0, 16.65, 334))
    with pytest.raises(InvalidInputError) as error:
        read_calibration(path, spec, layout_preset("hist"))
    message = str(error.value)
    assert "333 bins from 0 to 16.65" in message
    assert "800 bins from 0.4 to 16.4 kNPE" in message


def test_weighted_histogram_rejected(tmp_path):
    spec = default_spec()
    path = tmp_path / "weighted.root"
    with uproot.recreate(path) as file:
        file["Cs137"] = (np.full(800, 2.5), spec.binning.edges_array())
    with pytest.raises(InvalidInputError, match="weighted"):
        read_calibration(path, spec, layout_preset("hist"))


def test_nan_and_negative_npe_rejected(tmp_path):
    spec = default_spec()
    for name, bad in (("nan", np.nan), ("negative", -1.0)):
        path = tmp_path / f"{name}.root"
        with uproot.recreate(path) as file:
            file.mktree("Cs137", {"npe": np.float64})
            file["Cs137"].extend({"npe": np.array([1.0, bad, 2.0])})
        with pytest.raises(InvalidInputError, match="NaN" if name == "nan" else "negative"):
            read_calibration(path, spec, layout_preset("tree"))


def test_jagged_branch_rejected(tmp_path):
    spec = default_spec()
    path = tmp_path / "jagged.root"
    with uproot.recreate(path) as file:
        file.mktree("Cs137", {"npe": "var * float64"})
        file["Cs137"].extend({"npe": ak.Array([[1.0, 2.0], [3.0]])})
    with pytest.raises(InvalidInputError, match="not a flat numeric branch"):
        read_calibration(path, spec, layout_preset("tree"))


def test_missing_branch_lists_branches(tmp_path):
    spec = default_spec()
    path = tmp_path / "branch.root"
    with uproot.recreate(path) as file:
        file.mktree("Cs137", {"charge": np.float64, "time": np.float64})
        file["Cs137"].extend({"charge": np.ones(3), "time": np.ones(3)})
    with pytest.raises(InvalidInputError, match=r"no branch 'npe'; its branches are \['charge', 'time'\]"):
        read_calibration(path, spec, layout_preset("tree"))


def test_no_known_source_rejected(tmp_path):
    spec = default_spec()
    path = tmp_path / "other.root"
    with uproot.recreate(path) as file:
        file.mktree("Na22", {"npe": np.float64})
        file["Na22"].extend({"npe": np.ones(3)})
    with pytest.raises(InvalidInputError, match="has none of the sources"):
        read_calibration(path, spec, layout_preset("tree"))


def test_recorded_spec_mismatch(tmp_path, spectra, tiny_spec):
    spec = default_spec()
    metadata = FileMetadata("calibration", tiny_spec.to_dict())
    path = write_calibration(tmp_path / "calib.root", spectra, layout_preset("tree"), tiny_spec, metadata)[0]
    with pytest.raises(SpecMismatchError, match="binning 160 bins from 0 to 16 kNPE"):
        read_calibration(path, spec, layout_preset("tree"))


def test_rebin_counts_with_flow():
    binning = Binning.uniform(1.0, 3.0, 2)
    edges = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5])
    counts = np.array([9, 1, 2, 3, 4, 5, 6, 7, 8])  # underflow 9, seven bins, overflow 8
    rebinned, underflow, overflow = rebin_counts(counts, edges, binning, "h")
    np.testing.assert_array_equal(rebinned, [3 + 4, 5 + 6])
    assert underflow == 9 + 1 + 2
    assert overflow == 7 + 8


def test_per_source_layout_needs_mapping(tmp_path):
    with pytest.raises(InvalidInputError, match="SOURCE=PATH"):
        read_calibration(tmp_path / "x.root", default_spec(), layout_preset("juno"))


def test_tiny_spec_fixture_used(tiny_spec):
    # The tiny spec changes grids and binning only, so the sources are the default ones.
    assert load_spec(None).sources == tiny_spec.sources


def test_layout_help_matches_presets():
    from neuromct_tf.cli.common import LayoutOption, NpeUnitOption
    from neuromct_tf.io.calib import LAYOUT_PRESETS, NPE_UNITS

    # The shared option help lists the presets and units by name; keep it in step with the code.
    assert ", ".join(LAYOUT_PRESETS) in LayoutOption.help
    assert ", ".join(NPE_UNITS) in NpeUnitOption.help
