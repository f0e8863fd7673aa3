"""Interoperability with ROOT itself: files written by ROOT read by neuromct-tf, and the reverse.

These tests need the ``interop`` extra (the PyPI ``root`` package) and are
skipped without it; ``make test`` leaves them out. Run them with
``python -m pytest -m interop``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuromct_tf.io.calib import layout_preset, read_calibration, write_calibration
from neuromct_tf.io.metadata import FileMetadata
from neuromct_tf.specs import default_spec

ROOT = pytest.importorskip("ROOT", reason="the interop extra (PyPI package 'root') is not installed")

pytestmark = pytest.mark.interop


def test_root_trec_files_read(tmp_path):
    """Per-source JUNO-style files written by ROOT: tree TRec, branch m_NPE as Int_t photo-electrons."""
    spec = default_spec()
    rng = np.random.default_rng(3)
    inputs, raw = {}, {}
    for source, peak in (("Cs137", 1000), ("K40", 2300)):
        values = rng.poisson(peak, 3000)
        path = tmp_path / f"{source}.root"
        file = ROOT.TFile(str(path), "RECREATE")
        tree = ROOT.TTree("TRec", "reconstruction")
        buffer = np.zeros(1, dtype=np.int32)
        tree.Branch("m_NPE", buffer, "m_NPE/I")
        for value in values:
            buffer[0] = value
            tree.Fill()
        tree.Write()
        file.Close()
        inputs[source], raw[source] = path, values
    data = read_calibration(inputs, spec, layout_preset("juno"))
    for source in data.sources:
        expected, _ = np.histogram(raw[source.source] / 1000.0, bins=spec.binning.edges_array())
        np.testing.assert_array_equal(source.counts, expected)


def test_root_th1_read_and_rebinned(tmp_path):
    """A TH1F with 0.01 kNPE bins written by ROOT is summed into the 0.02 kNPE spec bins."""
    spec = default_spec()
    path = tmp_path / "hist.root"
    file = ROOT.TFile(str(path), "RECREATE")
    histogram = ROOT.TH1F("Co60", "Co60", 2000, 0.0, 20.0)
    rng = np.random.default_rng(4)
    values = rng.normal(3.9, 0.1, 5000)
    for value in values:
        histogram.Fill(value)
    histogram.Write()
    file.Close()
    data = read_calibration(path, spec, layout_preset("hist"))
    expected, _ = np.histogram(values, bins=spec.binning.edges_array())
    # Bin edges of a float axis can put a value on the other side of an edge than numpy does,
    # so compare the total and the per-bin counts within one entry.
    assert data.sources[0].counts.sum() == expected.sum()
    assert np.max(np.abs(data.sources[0].counts - expected)) <= 1


def test_neuromct_file_read_by_root(tmp_path):
    spec = default_spec()
    npe = {"Cs137": np.full(10, 0.95), "AmC": np.full(20, 3.6)}
    path = tmp_path / "calib.root"
    write_calibration(path, npe, layout_preset("tree"), spec, FileMetadata("calibration", spec.to_dict(), seed=5))
    file = ROOT.TFile(str(path))
    assert file.Get("Cs137").GetEntries() == 10
    assert file.Get("AmC").GetEntries() == 20
    metadata = json.loads(str(file.Get("neuromct_metadata").GetString()))
    assert metadata["seed"] == 5
    file.Close()
