"""MC grid files: streaming writes, chunked reads, metadata and atomic output."""

from __future__ import annotations

import numpy as np
import pytest
import uproot

from neuromct_tf.errors import InvalidInputError, OutputError, SpecMismatchError
from neuromct_tf.io import mcgrid
from neuromct_tf.io.mcgrid import MCBlock, iterate_mc_grid, summarize_mc_grid, write_mc_grid
from neuromct_tf.io.metadata import FileMetadata
from neuromct_tf.specs import default_spec


def make_blocks(num_points: int, num_sources: int, size: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    for point_index in range(num_points):
        for source_id in range(num_sources):
            yield MCBlock(
                npe=rng.uniform(0.5, 10.0, size),
                trigger_kind=np.zeros(size, dtype=np.int8),
                point_index=point_index,
                point=(6.0 + point_index, 0.5, 10000.0),
                source_id=source_id,
            )


def test_write_and_iterate_in_chunks(tmp_path, tiny_spec, monkeypatch):
    # A small flush size makes the writer emit several baskets, as it does for a full grid.
    monkeypatch.setattr(mcgrid, "FLUSH_ENTRIES", 1000)
    path = tmp_path / "grid.root"
    metadata = FileMetadata("mc_grid", tiny_spec.to_dict(), seed=4, details={"grid": "training"})
    num_entries = write_mc_grid(path, make_blocks(3, 5, 250), metadata)
    assert num_entries == 3 * 5 * 250

    with uproot.open(path) as file:
        tree = file["mc"]
        assert tree["npe"].num_baskets > 1
        assert {name: tree[name].interpretation.from_dtype.kind for name in ("npe", "source", "point")} == {
            "npe": "f",
            "source": "i",
            "point": "i",
        }

    expected = list(make_blocks(3, 5, 250))
    chunks = list(iterate_mc_grid([path], tiny_spec, step_size=400))
    assert max(len(c["npe"]) for c in chunks) <= 400
    npe = np.concatenate([c["npe"] for c in chunks])
    np.testing.assert_allclose(npe, np.concatenate([b.npe for b in expected]).astype(np.float32))
    point = np.concatenate([c["point"] for c in chunks])
    np.testing.assert_array_equal(point, np.repeat([0, 1, 2], 5 * 250))
    kb = np.concatenate([c["kB"] for c in chunks])
    np.testing.assert_array_equal(np.unique(kb), [6.0, 7.0, 8.0])


def test_summary_counts_sources(tmp_path, tiny_spec):
    path = tmp_path / "grid.root"
    write_mc_grid(path, make_blocks(2, 5, 100), FileMetadata("mc_grid", tiny_spec.to_dict()))
    summary = summarize_mc_grid(path, 5, tiny_spec)
    assert summary.num_points == 2
    np.testing.assert_array_equal(summary.entries, [200] * 5)
    # Uniform on [0.5, 10]: mean 5.25, standard error 2.74 / sqrt(200) = 0.19; 5 sigma.
    np.testing.assert_allclose(summary.mean_npe, 5.25, atol=1.0)


def test_recorded_spec_mismatch_rejected(tmp_path, tiny_spec):
    path = tmp_path / "grid.root"
    write_mc_grid(path, make_blocks(1, 5, 10), FileMetadata("mc_grid", tiny_spec.to_dict()))
    with pytest.raises(SpecMismatchError, match="binning"):
        list(iterate_mc_grid([path], default_spec()))


def test_missing_branch_rejected(tmp_path, tiny_spec):
    path = tmp_path / "other.root"
    with uproot.recreate(path) as file:
        file.mktree("mc", {"npe": np.float32})
        file["mc"].extend({"npe": np.ones(3, dtype=np.float32)})
    with pytest.raises(InvalidInputError, match=r"lacks the branches \['kB'"):
        list(iterate_mc_grid([path], tiny_spec))


def test_failed_write_keeps_existing_file(tmp_path, tiny_spec):
    path = tmp_path / "grid.root"
    write_mc_grid(path, make_blocks(1, 5, 10), FileMetadata("mc_grid", tiny_spec.to_dict()))
    before = path.read_bytes()

    def failing_blocks():
        yield from make_blocks(1, 5, 10)
        raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        write_mc_grid(path, failing_blocks(), FileMetadata("mc_grid", tiny_spec.to_dict()), overwrite=True)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".yaml") == ["grid.root"]


def test_existing_output_needs_overwrite(tmp_path, tiny_spec):
    path = tmp_path / "grid.root"
    path.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="--overwrite"):
        write_mc_grid(path, make_blocks(1, 5, 10), FileMetadata("mc_grid", tiny_spec.to_dict()))
    assert path.read_bytes() == b"keep me"


def test_same_content_same_bytes(tmp_path, tiny_spec):
    metadata = FileMetadata("mc_grid", tiny_spec.to_dict(), seed=9)
    first, second = tmp_path / "a.root", tmp_path / "b.root"
    write_mc_grid(first, make_blocks(2, 5, 50, seed=1), metadata)
    write_mc_grid(second, make_blocks(2, 5, 50, seed=1), metadata)
    assert first.read_bytes() == second.read_bytes()
