"""The random-forest baseline for Tox21: per task, 500 trees with balanced
class weights (scikit-learn), on the ECFP4 bits `ferrochem featurize`
writes, scored by mean masked ROC-AUC over the tasks.

    # DeepChem's split: fit on its training part, score its test part
    python3 benches/python/random_forest.py split DATA.csv[.gz] BITS.tsv SPLIT.tsv

    # the folds of a `ferrochem train --folds K` run: fit each fold on the
    # rows outside its test part, beside ferrochem's score on that part
    python3 benches/python/random_forest.py folds DATA.csv[.gz] BITS.tsv RUN_DIR

BITS.tsv is `ferrochem featurize -i DATA -o BITS.tsv`. A fold's test rows
are read back from RUN_DIR/fold-N/test_predictions.csv by SMILES (a SMILES
that occurs twice in DATA puts both rows in that fold's test part).
"""

import argparse
import csv
import json
import os

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score

from molnet_csv import read_csv, task_columns


def read_table(path):
    header, rows = read_csv(path)
    smiles_col = header.index("smiles")
    task_cols = task_columns(header)
    labels = np.array(
        [[float(r[i]) if r[i] != "" else np.nan for i in task_cols] for r in rows]
    )
    return [r[smiles_col] for r in rows], labels


def read_bits(path, n_rows, n_bits=1024):
    x = np.zeros((n_rows, n_bits), dtype=np.uint8)
    usable = np.zeros(n_rows, dtype=bool)
    for line in open(path):
        row, field = line.rstrip("\n").split("\t")
        if field.startswith("!"):
            continue
        usable[int(row)] = True
        if field:
            x[int(row), [int(b) for b in field.split(",")]] = 1
    return x, usable


def mean_auc(x, y, train, test, seed):
    aucs = []
    for task in range(y.shape[1]):
        fit_rows = train[~np.isnan(y[train, task])]
        score_rows = test[~np.isnan(y[test, task])]
        forest = RandomForestClassifier(
            n_estimators=500, class_weight="balanced", n_jobs=-1, random_state=seed
        )
        forest.fit(x[fit_rows], y[fit_rows, task])
        scores = forest.predict_proba(x[score_rows])[:, 1]
        aucs.append(roc_auc_score(y[score_rows, task], scores))
    return float(np.mean(aucs))


def split_mode(args, x, y, usable):
    parts = {}
    for line in open(args.source):
        fields = line.split()
        if not fields or fields[0].startswith("#") or fields[0] == "row":
            continue
        parts.setdefault(fields[1], []).append(int(fields[0]))
    train = np.array([r for r in parts["train"] if usable[r]])
    test = np.array([r for r in parts["test"] if usable[r]])
    for seed in args.seeds:
        auc = mean_auc(x, y, train, test, seed)
        print(f"seed {seed}: random forest, test mean ROC-AUC {auc:.4f}", flush=True)


def folds_mode(args, x, y, usable, smiles):
    rows_of = {}
    for row, s in enumerate(smiles):
        rows_of.setdefault(s, []).append(row)
    forest_scores, ours = [], []
    fold = 1
    while os.path.isdir(os.path.join(args.source, f"fold-{fold}")):
        fold_dir = os.path.join(args.source, f"fold-{fold}")
        with open(os.path.join(fold_dir, "test_predictions.csv")) as f:
            test = sorted({r for line in csv.DictReader(f) for r in rows_of[line["smiles"]]})
        in_test = np.zeros(len(smiles), dtype=bool)
        in_test[test] = True
        train = np.flatnonzero(~in_test & usable)
        test = np.flatnonzero(in_test & usable)
        forest_scores.append(mean_auc(x, y, train, test, args.seeds[0]))
        with open(os.path.join(fold_dir, "summary.json")) as f:
            ours.append(json.load(f)["test"]["mean_roc_auc"])
        print(
            f"fold {fold}: random forest {forest_scores[-1]:.4f}, ferrochem {ours[-1]:.4f}",
            flush=True,
        )
        fold += 1
    print(f"mean: random forest {np.mean(forest_scores):.4f}, ferrochem {np.mean(ours):.4f}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["split", "folds"])
    parser.add_argument("data")
    parser.add_argument("bits")
    parser.add_argument("source", help="the split file (split) or the run folder (folds)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    smiles, y = read_table(args.data)
    x, usable = read_bits(args.bits, len(smiles))
    if args.mode == "split":
        split_mode(args, x, y, usable)
    else:
        folds_mode(args, x, y, usable, smiles)


if __name__ == "__main__":
    main()
