"""`steadyrun demo`: a real, small pipeline tracked end to end as ONE run.

The shape is seed 002's: an orchestrator owns the run and starts, one after the other,
two training stages and an evaluation, each a subprocess given `run.child_env()`, so
each joins the same run with a plain `steadyrun.init()` and writes its own segment.
The stages (NumPy MLP on scikit-learn's bundled digits, no download) live in
`demo_stages.py`; this module prepares the data, runs the stages, then reads the run
back with `steadyrun.open_run` and shows what was recorded and where to look next. It
is what a new user runs first, so it must finish in seconds and show every feature
that matters: namespaced steps that restart per stage, summary-only eval scores,
tables, images, a saved file, and the W&B offline folder when there is one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

STAGES = ("pretrain", "finetune")
PRESETS = Path(__file__).with_name("demo_presets.toml")
DEFAULT_EPOCHS = {"pretrain": 6, "finetune": 4}


def register(sub: Any) -> None:
    d = sub.add_parser("demo", help="train a small model, tracked end to end")
    d.add_argument("--epochs", type=int, default=None)
    d.add_argument("--mode", default=None, help="auto, online, offline, local")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--preset", default="digits", help="experiment preset: digits, digits-wide")
    d.set_defaults(func=main)


def make_config(seed: int, epochs: int | None) -> dict[str, Any]:
    """Everything that decides the numbers; `--epochs N` sets each training stage to N."""
    return {
        "seed": seed,
        "dataset": {"name": "sklearn.datasets.load_digits", "split": [0.6, 0.2, 0.2],
                    "scale": "x/16"},
        "model": {"type": "mlp", "inputs": 64, "hidden": 128, "classes": 10,
                  "activation": "relu"},
        "optimizer": {"name": "sgd", "momentum": 0.9, "weight_decay": 1e-4,
                      "schedule": "cosine to lr/20 per stage", "batch_size": 64},
        "stages": {
            "pretrain": {"epochs": epochs or DEFAULT_EPOCHS["pretrain"], "lr": 0.2,
                         "input_noise": 0.1},
            "finetune": {"epochs": epochs or DEFAULT_EPOCHS["finetune"], "lr": 0.05,
                         "input_noise": 0.0},
        },
        "log_every": 4,
    }


def write_data(path: Path, seed: int) -> dict[str, int]:
    """Load digits once here, so the stages import NumPy only (sklearn costs seconds)."""
    import numpy as np
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = x.astype(np.float64) / 16.0
    order = np.random.default_rng(seed).permutation(len(y))
    n_tr, n_va = int(0.6 * len(y)), int(0.2 * len(y))
    parts = {"train": order[:n_tr], "val": order[n_tr:n_tr + n_va], "test": order[n_tr + n_va:]}
    arrays = {}
    for name, idx in parts.items():
        arrays[f"x_{name}"], arrays[f"y_{name}"] = x[idx], y[idx].astype(np.int64)
    np.savez(path, **arrays)
    return {f"n_{name}": len(idx) for name, idx in parts.items()}


def stage_commands(cfg: dict[str, Any], tmp: Path) -> list[tuple[str, list[str]]]:
    base = [sys.executable, "-m", "steadyrun.cli.demo_stages"]
    opt = cfg["optimizer"]
    cmds = []
    prev: Path | None = None
    for name in STAGES:
        st = cfg["stages"][name]
        out = tmp / f"{name}.npz"
        cmd = base + ["train", "--stage", name, "--data", str(tmp / "data.npz"),
                      "--out", str(out), "--epochs", str(st["epochs"]), "--lr", str(st["lr"]),
                      "--noise", str(st["input_noise"]), "--momentum", str(opt["momentum"]),
                      "--weight-decay", str(opt["weight_decay"]),
                      "--batch-size", str(opt["batch_size"]),
                      "--hidden", str(cfg["model"]["hidden"]),
                      "--log-every", str(cfg["log_every"]), "--seed", str(cfg["seed"])]
        if prev is not None:
            cmd += ["--init", str(prev)]
        cmds.append((name, cmd))
        prev = out
    cmds.append(("eval", base + ["eval", "--data", str(tmp / "data.npz"),
                                 "--weights", str(prev)]))
    return cmds


def child_env(run: Any) -> dict[str, str]:
    """The run's context for the stages, plus one BLAS thread: these matrices are tiny,
    threads only cost start-up time, and a fixed thread count keeps sums bit-identical."""
    env = run.child_env()
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    return env


def main(args: Any) -> int:
    """Run the pipeline; 0 when every stage succeeded, else 1 and the run marked failed."""
    import steadyrun

    t0 = time.perf_counter()
    cfg = make_config(args.seed, args.epochs)
    with tempfile.TemporaryDirectory(prefix="steadyrun-demo-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            cfg["dataset"].update(write_data(tmp / "data.npz", args.seed))
        except ImportError as exc:
            print(f"steadyrun demo needs numpy and scikit-learn ({exc}); install them with "
                  f"pip install 'steadyrun[demo]'", file=sys.stderr)
            return 2
        preset = getattr(args, "preset", None) or "digits"
        run = steadyrun.init_from_args(
            {"experiment": preset}, config=cfg, presets=PRESETS,
            name=f"digits-mlp-{preset}-seed{args.seed}", job_type="pipeline", mode=args.mode,
            dir=args.dir, required_tags=["demo", "model"])
        cfg = dict(run.config)  # the preset's overrides, as the stages must see them
        print(f"steadyrun demo: run {run.id} (mode {run.mode}) -> {run.dir}", flush=True)
        for name in STAGES:
            run.define_metric(f"{name}/val_acc", goal="maximize")
            run.define_metric(f"{name}/val_loss", goal="minimize")
        failed: str | None = None
        timings: dict[str, float] = {}
        try:
            env = child_env(run)
            for name, cmd in stage_commands(cfg, tmp):
                print(f"[{name}]", flush=True)
                t = time.perf_counter()
                rc = subprocess.call(cmd, env=env)
                timings[f"{name}_s"] = round(time.perf_counter() - t, 3)
                if rc != 0:
                    failed = f"stage {name} exited with code {rc}"
                    run.alert(f"demo stage {name} failed", f"{failed}: {' '.join(cmd)}",
                              level="ERROR")
                    break
                if name == STAGES[-1]:
                    run.save(tmp / f"{name}.npz", name="model.npz")
            timings["pipeline_s"] = round(time.perf_counter() - t0, 3)
            run.log_summary(timings, prefix="timing")
        except BaseException:
            run.finish(exit_code=1)
            raise
        t_finish = time.perf_counter()
        run.finish(exit_code=1 if failed else 0)  # the owner waits for the sidecar's drain
    finish_s = time.perf_counter() - t_finish
    if failed:
        print(f"steadyrun demo: {failed}", file=sys.stderr)
    if run.dir is not None:
        report(run, args)
        html_report(run, args)
    else:
        print(f"mode {run.mode}: nothing was recorded")
    print(f"wall time:  {time.perf_counter() - t0:.1f} s (pipeline {timings['pipeline_s']:.1f} s, "
          f"finish and W&B drain {finish_s:.1f} s)")
    return 1 if failed else 0


def report(run: Any, args: Any) -> None:
    """Read the run back from disk, as any later reader would, and say where it lives."""
    from rich.console import Console
    from rich.table import Table

    import steadyrun

    data = steadyrun.open_run(run.dir)
    con = Console()
    writers = {}
    for rec in data.records:
        if rec["k"] == "open":
            writers[rec["_seg"]] = rec.get("job_type") or rec.get("role")
    con.print(f"\n[bold]run {data.id}[/] ({data.manifest.get('name')}) {data.state}; "
              f"writers: {', '.join(str(w) for w in writers.values())}")
    t = Table(title="history", title_justify="left")
    for col, just in (("namespace", "left"), ("rows", "right"), ("steps", "right"),
                      ("final val_acc", "right"), ("best val_acc", "right")):
        t.add_column(col, justify=just)
    for ns in data.namespaces:
        hist = data.history(ns)
        steps = [s for s, _ in data.column(f"{ns}/step" if ns else "step") if s is not None]
        acc = [v for _, v in data.column(f"{ns}/val_acc")]
        t.add_row(ns or "<root>", str(len(hist)), f"{min(steps)}..{max(steps)}" if steps else "",
                  f"{acc[-1]:.4f}" if acc else "", f"{max(acc):.4f}" if acc else "")
    con.print(t)
    s = Table(title="summary", title_justify="left")
    s.add_column("key")
    s.add_column("value", justify="right")
    for k, v in data.summary.items():
        s.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
    con.print(s)
    extra = [f"tables: {', '.join(x['key'] for x in data.tables)}",
             f"images: {', '.join(x['key'] for x in data.images)}",
             f"files:  {', '.join(x['path'] for x in data.files)}"]
    hist_keys = sorted({k.rsplit("/", 1)[0] for h in data.histograms for k in h["v"]})
    if hist_keys:
        extra.append(f"histograms: {', '.join(f'{k}/*' for k in hist_keys)} "
                     f"({len(data.histograms)} records)")
    con.print("\n".join(extra))
    anomalies = data.anomalies
    con.print(f"anomalies: {len(anomalies)}" + ("" if not anomalies else
              " (" + ", ".join(str(a.get("type")) for a in anomalies) + ")"))
    dir_flag = f"--dir {args.dir} " if args.dir else ""
    con.print(f"\nrun folder: {data.dir}")
    con.print(f"inspect:    steadyrun {dir_flag}show {data.id}", soft_wrap=True)
    wandb_mode, wandb_dirs = wandb_folders(data)
    for d in wandb_dirs:
        con.print(f"W&B files:  {d}\n  view offline: wandb leet {d}", soft_wrap=True)
    if wandb_dirs and wandb_mode != "online":
        con.print(f"  upload later: steadyrun {dir_flag}sync {data.id}   (or: wandb sync "
                  f"{wandb_dirs[-1]})", soft_wrap=True)


def html_report(run: Any, args: Any) -> None:
    """The run as a one-file HTML report beside the runs, and how to see it live."""
    from .ui import DEFAULT_PORT, need_ui_parts

    dir_flag = f"--dir {args.dir} " if args.dir else ""
    missing = need_ui_parts("the HTML report")
    if missing:
        print(missing)
        return
    from ..ui.report import write_report

    out = Path(run.dir).parent.parent / "report.html"
    size = write_report([Path(run.dir)], out)
    print(f"report:     {out} ({size / 1e6:.1f} MB, one file, opens offline in any browser)")
    print(f"dashboard:  steadyrun {dir_flag}ui   (then open http://127.0.0.1:{DEFAULT_PORT}/)")


def wandb_folders(data: Any) -> tuple[str | None, list[str]]:
    """The W&B sink's mode and its run folders that exist on disk."""
    dirs = [str(p) for p in data.wandb.get("run_dirs") or []]
    return data.wandb.get("mode"), [p for p in dirs if os.path.isdir(p)]
