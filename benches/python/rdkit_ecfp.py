"""RDKit's ECFP4 over a CSV of SMILES, timed, as the speed anchor for
`ferrochem featurize`; with --compare, also checks ferrochem's output file
bit for bit.

    python3 benches/python/rdkit_ecfp.py datasets/tox21.csv.gz [--counts] [--compare out.tsv]

Prints the parse + fingerprint time in one process (reading the file
excluded) and, with --compare, how many rows agree. With --counts, RDKit's
count fingerprint against `ferrochem featurize --counts`.
"""

import argparse
import csv
import gzip
import io
import sys
import time

from rdkit import Chem, RDLogger
from rdkit.Chem import rdFingerprintGenerator


def read_smiles(path, column):
    raw = open(path, "rb").read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    rows = csv.DictReader(io.StringIO(raw.decode("utf-8-sig")))
    return [row[column] for row in rows]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("input")
    parser.add_argument("--smiles-column", default="smiles")
    parser.add_argument("--compare", help="a `ferrochem featurize` output to check")
    parser.add_argument("--counts", action="store_true", help="count fingerprints")
    args = parser.parse_args()
    RDLogger.DisableLog("rdApp.*")

    smiles = read_smiles(args.input, args.smiles_column)
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
    started = time.perf_counter()
    bits = []
    for s in smiles:
        mol = Chem.MolFromSmiles(s)
        if mol is None:
            bits.append(None)
        elif args.counts:
            counts = generator.GetCountFingerprint(mol).GetNonzeroElements()
            bits.append([f"{b}:{n}" for b, n in sorted(counts.items())])
        else:
            bits.append([str(b) for b in sorted(generator.GetFingerprint(mol).GetOnBits())])
    seconds = time.perf_counter() - started
    print(f"rdkit: {len(smiles)} SMILES parsed and fingerprinted in {seconds:.3f} s")

    if args.compare:
        ours = {}
        for line in open(args.compare):
            row, _, value = line.rstrip("\n").partition("\t")
            ours[int(row)] = None if value.startswith("!") else [b for b in value.split(",") if b]
        same = sum(1 for i, b in enumerate(bits) if ours.get(i) == b)
        print(f"agree: {same} of {len(bits)} rows ({100.0 * same / len(bits):.3f} %)")
        shown = 0
        for i, b in enumerate(bits):
            if ours.get(i) != b and shown < 10:
                shown += 1
                print(f"  row {i}: {smiles[i]}\n    rdkit {b}\n    ours  {ours.get(i)}", file=sys.stderr)


if __name__ == "__main__":
    main()
