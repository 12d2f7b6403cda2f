"""The speed anchor for one Tox21 training epoch: the same network, data
and optimizer as `ferrochem train`'s epoch, in PyTorch.

    python3 benches/python/torch_epoch.py FEATURES.tsv datasets/tox21.csv.gz \
        [--threads 2] [--epochs 5] [--rows 6258]

FEATURES.tsv is `ferrochem featurize` output (ROW<TAB>BITS), so both sides
train on identical fingerprints. The network is 1024 -> 1000 ReLU ->
dropout 0.25 -> 12 logits, trained by Adam (lr 1e-3) on batches of 50
with the masked, class-balanced binary cross-entropy ferrochem uses,
fingerprints as a dense float tensor (what DeepChem feeds PyTorch).
Prints each epoch's seconds and a final line

    torch: epoch X s (fastest of N), threads T, rows R
"""

import argparse
import time

import torch

from molnet_csv import read_csv, task_columns


def read_labels(path):
    header, rows = read_csv(path)
    tasks = task_columns(header)
    return [[row[i] for i in tasks] for row in rows]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("features")
    parser.add_argument("labels")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rows", type=int, default=6258)
    parser.add_argument("--batch-size", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # ferrochem's workers flush subnormal numbers to zero; give PyTorch the
    # same setting so that neither side pays for them and the other not.
    torch.set_flush_denormal(True)
    torch.manual_seed(0)

    labels = read_labels(args.labels)
    rows, bits = [], []
    for line in open(args.features):
        row, field = line.rstrip("\n").split("\t")
        if field.startswith("!"):
            continue
        rows.append(int(row))
        bits.append([int(b) for b in field.split(",")] if field else [])
        if len(rows) == args.rows:
            break
    n, n_tasks = len(rows), len(labels[0])
    x = torch.zeros(n, 1024)
    for r, on in enumerate(bits):
        x[r, on] = 1.0
    y = torch.zeros(n, n_tasks)
    mask = torch.zeros(n, n_tasks)
    for r, row in enumerate(rows):
        for t, cell in enumerate(labels[row]):
            if cell != "":
                y[r, t] = float(cell)
                mask[r, t] = 1.0
    # DeepChem's balancing: each class weighs n_labelled / n_class.
    n_pos = (y * mask).sum(0)
    n_lab = mask.sum(0)
    w_pos = n_lab / n_pos.clamp(min=1)
    w_neg = n_lab / (n_lab - n_pos).clamp(min=1)
    weights = mask * (y * w_pos + (1 - y) * w_neg)

    model = torch.nn.Sequential(
        torch.nn.Linear(1024, 1000),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.25),
        torch.nn.Linear(1000, n_tasks),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    bce = torch.nn.BCEWithLogitsLoss(reduction="none")
    model.train()
    times = []
    for epoch in range(args.epochs):
        started = time.perf_counter()
        order = torch.randperm(n)
        for start in range(0, n, args.batch_size):
            idx = order[start : start + args.batch_size]
            logits = model(x[idx])
            w, m = weights[idx], mask[idx]
            loss = (bce(logits, y[idx]) * w).sum() / m.sum().clamp(min=1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        times.append(time.perf_counter() - started)
        print(f"epoch {epoch + 1}: {times[-1]:.3f} s, last loss {loss.item():.4f}")
    print(
        f"torch: epoch {min(times):.4f} s (fastest of {len(times)}), "
        f"threads {args.threads}, rows {n}, torch {torch.__version__}"
    )


if __name__ == "__main__":
    main()
