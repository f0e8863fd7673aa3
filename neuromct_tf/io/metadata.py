"""The record of spec, package version and seed that every written file carries.

It is stored as a ``TObjString`` named ``neuromct_metadata`` whose text is a JSON
object, so that ROOT itself can print it
(``TObjString* m; f.GetObject("neuromct_metadata", m); m->GetString()``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uproot

from neuromct_tf._version import __version__
from neuromct_tf.errors import InvalidInputError
from neuromct_tf.specs import DataSpec
from neuromct_tf.specs.loading import spec_from_dict

METADATA_KEY = "neuromct_metadata"


@dataclass(frozen=True)
class FileMetadata:
    """Provenance of a file written by neuromct-tf.

    Attributes
    ----------
    kind : str
        File layout: ``mc_grid`` or ``calibration``.
    spec : dict
        The data spec in the form of :meth:`DataSpec.to_dict`.
    version : str
        neuromct-tf version that wrote the file.
    seed : int or None
        Seed of the random stage that made the file.
    details : dict
        Layout-specific entries (grid name, shard, point, layout, ...).
    """

    kind: str
    spec: dict
    version: str = __version__
    seed: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """Return the JSON text stored in the file."""
        return json.dumps(
            {"kind": self.kind, "version": self.version, "seed": self.seed, "details": self.details, "spec": self.spec},
            sort_keys=True,
        )

    def data_spec(self, origin: str) -> DataSpec:
        """Return the recorded spec as a :class:`DataSpec`."""
        return spec_from_dict(self.spec, origin=f"the spec recorded in {origin}")


def write_metadata(file: uproot.WritableDirectory, metadata: FileMetadata) -> None:
    """Write ``metadata`` into an open writable file."""
    file[METADATA_KEY] = metadata.to_json()


def read_metadata(directory: uproot.ReadOnlyDirectory, path: str | Path) -> FileMetadata | None:
    """Return the metadata of an open file, or ``None`` when the file has none (written by other tools).

    Raises
    ------
    InvalidInputError
        If the record exists but is not valid.
    """
    if METADATA_KEY not in directory.keys(cycle=False):
        return None
    text = str(directory[METADATA_KEY])
    try:
        data = json.loads(text)
        return FileMetadata(
            kind=data["kind"],
            spec=data["spec"],
            version=data["version"],
            seed=data.get("seed"),
            details=data.get("details", {}),
        )
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise InvalidInputError(f"{path}: the {METADATA_KEY} record is invalid ({error}); regenerate the file") from None
