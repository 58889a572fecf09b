"""The demo's stages: a NumPy MLP trained, then evaluated, each in its own subprocess.

`steadyrun demo` runs `python -m steadyrun.cli.demo_stages train|eval ...` with the
orchestrator's `run.child_env()`, so the plain `steadyrun.init(job_type=...)` below joins
the orchestrator's run and writes its own segment: one pipeline, one run (seed 002). Run
by hand without that environment, a stage simply starts a run of its own.

NumPy only, on purpose: the demo must work wherever steadyrun installs, without torch,
in seconds on two slow cores. Every random draw comes from a generator seeded by
(--seed, stage name), so the same seed gives the same numbers, bit for bit.
"""

from __future__ import annotations

import argparse
import sys
import zlib
from typing import Any

import numpy as np

import steadyrun

N_CLASSES = 10


# ---------------------------------------------------------------------- the model
def init_params(rng: np.random.Generator, n_in: int, hidden: int) -> dict[str, np.ndarray]:
    """He initialisation for the ReLU layer, small weights for the softmax layer."""
    return {"w1": rng.normal(0.0, np.sqrt(2.0 / n_in), (n_in, hidden)),
            "b1": np.zeros(hidden),
            "w2": rng.normal(0.0, np.sqrt(1.0 / hidden), (hidden, N_CLASSES)),
            "b2": np.zeros(N_CLASSES)}


def forward(p: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hidden activations and class probabilities (a numerically stable softmax)."""
    h = np.maximum(x @ p["w1"] + p["b1"], 0.0)
    logits = h @ p["w2"] + p["b2"]
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return h, e / e.sum(axis=1, keepdims=True)


def loss_acc(p: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    _, probs = forward(p, x)
    loss = -np.log(probs[np.arange(len(y)), y] + 1e-12).mean()
    return float(loss), float((probs.argmax(1) == y).mean())


def grads(p: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray,
          weight_decay: float) -> tuple[dict[str, np.ndarray], float, float]:
    """Backpropagation by hand: cross-entropy through softmax, then ReLU."""
    h, probs = forward(p, x)
    n = len(y)
    loss = float(-np.log(probs[np.arange(n), y] + 1e-12).mean())
    acc = float((probs.argmax(1) == y).mean())
    d = probs
    d[np.arange(n), y] -= 1.0
    d /= n
    dh = (d @ p["w2"].T) * (h > 0)
    g = {"w2": h.T @ d + weight_decay * p["w2"], "b2": d.sum(0),
         "w1": x.T @ dh + weight_decay * p["w1"], "b1": dh.sum(0)}
    return g, loss, acc


def load_npz(path: str) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def stage_rng(seed: int, stage: str) -> np.random.Generator:
    """Python's str hash is salted per process; crc32 keeps stage seeds stable."""
    return np.random.default_rng([seed, zlib.crc32(stage.encode())])


# ---------------------------------------------------------------------- stages
def train(args: argparse.Namespace) -> int:
    """One training stage. Its keys live in namespace `<stage>/`, steps = batch steps.

    Train rows (`loss`, `acc`, `lr`, every --log-every batches) and per-epoch validation
    rows (`val_loss`, `val_acc`, `epoch`) share the stage's namespace and so its x-axis,
    `<stage>/step`: a validation row is stamped with the step of the epoch's last batch,
    which keeps the step non-decreasing and puts val and train curves on one chart. Each
    stage counts from 0 in its own namespace (seed 001); steps never collide across stages.
    """
    run = steadyrun.init(project="steadyrun-demo", job_type=args.stage,
                         log_interval=args.log_every)
    steadyrun.set_seeds(args.seed, torch=False)  # recorded in the run; NumPy-only stage
    ns = args.stage
    data = load_npz(args.data)
    x_tr, y_tr, x_va, y_va = data["x_train"], data["y_train"], data["x_val"], data["y_val"]
    rng = stage_rng(args.seed, ns)
    if args.init:
        params = load_npz(args.init)
    else:
        params = init_params(rng, x_tr.shape[1], args.hidden)
    velocity = {k: np.zeros_like(v) for k, v in params.items()}

    n_batches = -(-len(y_tr) // args.batch_size)
    total = n_batches * args.epochs
    step = 0
    window_acc: list[float] = []
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(y_tr))
        for b in range(n_batches):
            idx = order[b * args.batch_size:(b + 1) * args.batch_size]
            xb = x_tr[idx]
            if args.noise:  # pretraining sees noisy digits; finetuning sees clean ones
                xb = xb + rng.normal(0.0, args.noise, xb.shape)
            # cosine decay from lr to lr/20 over the stage
            lr = args.lr * (0.05 + 0.95 * 0.5 * (1.0 + np.cos(np.pi * step / max(total - 1, 1))))
            g, loss, acc = grads(params, xb, y_tr[idx], args.weight_decay)
            if not np.isfinite(loss):
                run.alert(f"{ns} diverged", f"loss is {loss} at {ns}/step {step}", level="ERROR")
                run.finish(exit_code=1)
                print(f"{ns}: loss diverged at step {step}", file=sys.stderr)
                return 1
            for k in params:
                velocity[k] = args.momentum * velocity[k] - lr * g[k]
                params[k] += velocity[k]
            # <stage>/loss/total and <stage>/perf/* every --log-every steps, on the
            # stage's own axes; accuracy and lr (a NumPy optimizer) beside them
            run.log_training_step(loss, step, batch_size=len(idx), prefix=ns)
            window_acc.append(acc)
            if step % args.log_every == 0:
                run.log({f"{ns}/acc": float(np.mean(window_acc)), f"{ns}/lr": float(lr)},
                        step=step)
                window_acc.clear()
            step += 1
        val_loss, val_acc = loss_acc(params, x_va, y_va)
        run.log({f"{ns}/val_loss": val_loss, f"{ns}/val_acc": val_acc, f"{ns}/epoch": epoch},
                step=step - 1)
        for k, v in params.items():  # how the weights spread, epoch by epoch
            run.log_histogram(f"{ns}/weights/{k}", v, step=step - 1, bins=32)
        print(f"  {ns:<9} epoch {epoch}/{args.epochs}  val_loss {val_loss:.4f}  "
              f"val_acc {val_acc:.4f}", flush=True)

    np.savez(args.out, **params)
    run.log_checkpoint(args.out, aliases=[ns, "latest"], step=step - 1,
                       metadata={"val_loss": val_loss, "val_acc": val_acc, "epochs": args.epochs})
    run.finish()
    return 0


def evaluate(args: argparse.Namespace) -> int:
    """Final scores on the held-out test split: summary, tables and images, no rows.

    Final scalars go to the summary (never a one-point chart, seed 002); comparisons go
    to tables; the confusion matrix and the misclassified digits go to images.
    """
    run = steadyrun.init(project="steadyrun-demo", job_type="eval")
    data = load_npz(args.data)
    x_tr, y_tr, x_te, y_te = data["x_train"], data["y_train"], data["x_test"], data["y_test"]
    params = load_npz(args.weights)

    _, probs = forward(params, x_te)
    pred = probs.argmax(1)
    test_loss = float(-np.log(probs[np.arange(len(y_te)), y_te] + 1e-12).mean())
    conf = np.zeros((N_CLASSES, N_CLASSES), dtype=np.int64)
    np.add.at(conf, (y_te, pred), 1)

    majority = np.full_like(y_te, np.bincount(y_tr, minlength=N_CLASSES).argmax())
    centroids = np.stack([x_tr[y_tr == c].mean(0) for c in range(N_CLASSES)])
    nearest = ((x_te[:, None, :] - centroids[None]) ** 2).sum(-1).argmin(1)
    scores = {name: _scores(y_te, p) for name, p in
              (("majority_class", majority), ("nearest_centroid", nearest), ("mlp", pred))}
    model = scores["mlp"]

    run.config.update({"eval": {"split": "test", "n_test": int(len(y_te)),
                                "baselines": ["majority_class", "nearest_centroid"]}})
    run.log_summary({"test_acc": model["accuracy"], "test_loss": test_loss,
                     "macro_acc": model["macro_accuracy"],
                     "worst_class_acc": model["worst_class_accuracy"],
                     "baseline_acc": scores["nearest_centroid"]["accuracy"],
                     "n_test": int(len(y_te))}, prefix="eval")

    rows = []
    for c in range(N_CLASSES):
        n = int(conf[c].sum())
        off = conf[c].copy()
        off[c] = -1
        rows.append([c, n, int(conf[c, c]), round(conf[c, c] / max(n, 1), 4),
                     int(off.argmax()) if off.max() > 0 else None])
    run.log_table("eval/per_class", columns=["digit", "n", "correct", "accuracy",
                                             "most_confused_with"], rows=rows)
    run.log_table("eval/baseline_vs_model",
                  columns=["metric", "majority_class", "nearest_centroid", "mlp"],
                  rows=[[m] + [round(scores[s][m], 4) for s in scores] for m in model])

    run.log_image("eval/confusion", confusion_image(conf),
                  caption="test confusion matrix, row-normalised (rows: true, cols: predicted)")
    wrong = np.flatnonzero(pred != y_te)[:16]
    if len(wrong):
        run.log_image("eval/misclassified", digit_grid(x_te[wrong]),
                      caption=" ".join(f"{y_te[i]}->{pred[i]}" for i in wrong))
    print(f"  eval      test_acc {model['accuracy']:.4f}  (nearest centroid "
          f"{scores['nearest_centroid']['accuracy']:.4f})", flush=True)
    run.finish()
    return 0


def _scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    per_class = [float((pred[y == c] == c).mean()) for c in range(N_CLASSES) if (y == c).any()]
    return {"accuracy": float((pred == y).mean()), "macro_accuracy": float(np.mean(per_class)),
            "worst_class_accuracy": float(np.min(per_class))}


# ---------------------------------------------------------------------- pictures
def confusion_image(conf: np.ndarray, cell: int = 24) -> np.ndarray:
    """Row-normalised heatmap, white to dark blue, as an RGB uint8 array (no matplotlib)."""
    frac = conf / np.maximum(conf.sum(1, keepdims=True), 1)
    frac = np.sqrt(frac)  # make the rare confusions visible next to the big diagonal
    white, blue = np.array([255.0, 255.0, 255.0]), np.array([8.0, 48.0, 107.0])
    rgb = white + frac[..., None] * (blue - white)
    img = np.kron(rgb, np.ones((cell, cell, 1)))
    img[::cell, :, :] = img[-1, :, :] = 160  # grid lines and border
    img[:, ::cell, :] = img[:, -1, :] = 160
    return img.round().clip(0, 255).astype(np.uint8)


def digit_grid(x: np.ndarray, scale: int = 4, cols: int = 8) -> np.ndarray:
    """Tile 8x8 digits (values in [0, 1]) into one grayscale uint8 image."""
    tile = 8 * scale + 2
    rows = -(-len(x) // cols)
    out = np.full((rows * tile, cols * tile), 255, dtype=np.uint8)
    for i, d in enumerate(x):
        r, c = divmod(i, cols)
        img = np.kron(d.reshape(8, 8).clip(0, 1), np.ones((scale, scale)))
        out[r * tile + 1:r * tile + 1 + 8 * scale, c * tile + 1:c * tile + 1 + 8 * scale] = (
            255 - img * 255).round().astype(np.uint8)
    return out


# ---------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m steadyrun.cli.demo_stages", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="one training stage")
    t.add_argument("--stage", required=True, help="its name, and the namespace of its keys")
    t.add_argument("--data", required=True, help=".npz with x/y for train, val and test")
    t.add_argument("--out", required=True, help="where to write the weights (.npz)")
    t.add_argument("--init", default=None, help="weights to start from (.npz)")
    t.add_argument("--epochs", type=int, default=4)
    t.add_argument("--lr", type=float, default=0.05)
    t.add_argument("--momentum", type=float, default=0.9)
    t.add_argument("--weight-decay", type=float, default=1e-4)
    t.add_argument("--noise", type=float, default=0.0, help="std of input noise (augmentation)")
    t.add_argument("--hidden", type=int, default=64)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--log-every", type=int, default=4)
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(func=train)
    e = sub.add_parser("eval", help="test-set evaluation")
    e.add_argument("--data", required=True)
    e.add_argument("--weights", required=True)
    e.set_defaults(func=evaluate)
    return p


def main(argv: list[str] | None = None) -> int:
    args: Any = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
