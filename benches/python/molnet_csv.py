"""Reading the data sets the Python anchors share with ferrochem."""

import csv
import gzip
import io

# Columns that are never tasks in the MoleculeNet files.
NOT_TASKS = ("smiles", "mol_id")


def read_csv(path):
    """The header and the rows of a CSV file, plain or gzipped, BOM or not."""
    raw = open(path, "rb").read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    reader = csv.reader(io.StringIO(raw.decode("utf-8-sig")))
    header = next(reader)
    return header, list(reader)


def task_columns(header):
    """The indices of the label columns."""
    return [i for i, name in enumerate(header) if name not in NOT_TASKS]
