"""Histograms: `run.log_histogram` and `run.watch(model)` (seed 003's parameter and
gradient histograms), read back locally and from W&B's own transaction log."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_training import CountSyncs
from wandb_helpers import run_script, wandb_log

import steadyrun

torch = pytest.importorskip("torch")


def test_log_histogram_bins_like_numpy_and_counts_nonfinite(new_run) -> None:
    run = new_run()
    rng = np.random.default_rng(0)
    values = rng.normal(size=5000)
    values[:3] = [np.nan, np.inf, -np.inf]
    run.log({"train/loss": 1.0})
    run.log_histogram("weights/w", torch.tensor(values, dtype=torch.float64), bins=20)
    run.log_histogram("weights/w_np", values, bins=20)
    run.log_histogram("weights/const", [2.0] * 7, bins=4, step=5)
    run.finish()
    hists = steadyrun.open_run(run.id).histograms
    assert [list(h["v"]) for h in hists] == [["weights/w"], ["weights/w_np"], ["weights/const"]]
    counts, edges = np.histogram(values[np.isfinite(values)], bins=20)
    for h in hists[:2]:
        got = h["v"][next(iter(h["v"]))]
        assert got["counts"] == counts.tolist() and got["nonfinite"] == 3
        assert np.allclose(got["edges"], edges, rtol=1e-6, atol=1e-6)
    const = hists[2]["v"]["weights/const"]
    assert const["counts"] == np.histogram([2.0] * 7, bins=4)[0].tolist()
    assert np.allclose(const["edges"], np.histogram([2.0] * 7, bins=4)[1])
    assert hists[2]["x"] == 5


def test_bad_histograms_are_rejected_and_recorded_or_raised_in_strict(new_run) -> None:
    run = new_run()
    with pytest.warns(Warning, match="'h/words'.*needs numbers"):
        run.log_histogram("h/words", ["a", "b"])
    with pytest.warns(Warning, match="'h/nan'.*finite value"):
        run.log_histogram("h/nan", torch.tensor([float("nan")] * 3))
    with pytest.warns(Warning, match="'h/bins'.*bins must be"):
        run.log_histogram("h/bins", [1.0, 2.0], bins=0)
    run.log_histogram("h/ok", [1.0, 2.0, 3.0])
    run.finish()
    data = steadyrun.open_run(run.id)
    assert {e["key"] for e in data.events if e["type"] == "rejected"} == {
        "h/words", "h/nan", "h/bins"}
    assert [list(h["v"]) for h in data.histograms] == [["h/ok"]]
    strict = new_run(strict=True)
    with pytest.raises(ValueError, match="h/nan"):
        strict.log_histogram("h/nan", [float("nan")])


def _tiny() -> tuple:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(16, 4), torch.randn(16, 1)
    return model, opt, x, y


def _train(run, steps: int, watch: bool) -> CountSyncs:
    model, opt, x, y = _tiny()
    if watch:
        run.watch(model, log="all", log_freq=25)
    counter = CountSyncs()
    with counter:
        for step in range(steps):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            run.log_training_step(loss, step, model=model)
    return counter


def test_watch_takes_parameter_and_gradient_histograms_in_one_read_per_interval(new_run):
    plain = _train(new_run(log_interval=25), 100, watch=False)
    watched_run = new_run(log_interval=25)
    watched = _train(watched_run, 100, watch=True)
    # One extra host read per histogram interval (4), for all 8 histograms together.
    assert watched.total - plain.total == 4, (watched.counts, plain.counts)
    watched_run.finish()
    hists = steadyrun.open_run(watched_run.id).histograms
    assert [h["x"] for h in hists] == [0, 25, 50, 75]
    names = ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert sorted(hists[0]["v"]) == sorted([f"parameters/{n}" for n in names]
                                           + [f"gradients/{n}" for n in names])
    for h in hists:
        assert sum(h["v"]["parameters/0.weight"]["counts"]) == 32  # 4 x 8 weights


def test_histograms_reach_wandb_on_their_namespace_axis(tmp_path: Path) -> None:
    done = run_script(tmp_path, """
        import torch, steadyrun
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 2)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        run = steadyrun.init(project="hist", log_interval=10)
        run.watch(model, log="gradients", log_freq=10)
        for step in range(30):
            opt.zero_grad()
            loss = model(torch.randn(5, 3)).pow(2).mean()
            loss.backward()
            opt.step()
            run.log_training_step(loss, step, model=model)
        run.log_histogram("eval/scores", [0.1, 0.5, 0.5, 0.9], bins=4)
        run.finish()
    """, timeout=120)
    local = steadyrun.open_run(done.rdir).histograms
    log = wandb_log(done.rdir)
    rows = [r for r in log.history if any(k.startswith(("gradients/", "eval/scores"))
                                          for k in r)]
    assert len(rows) == len(local) == 4
    for rec, row in zip(local, rows, strict=True):
        for key, hist in rec["v"].items():
            assert row[key]["_type"] == "histogram"
            assert row[key]["values"] == hist["counts"]
            assert np.allclose(row[key]["bins"], hist["edges"])
            step_key = key.split("/")[0] + "/step"
            assert row[step_key] == rec["x"]
            assert log.metrics[key]["step_metric"] == step_key
    assert [r["gradients/step"] for r in rows[:3]] == [0, 10, 20]


def test_model_size_goes_to_the_summary_once(new_run) -> None:
    run = new_run(log_interval=5)
    model, opt, x, y = _tiny()
    model[0].weight.requires_grad_(False)
    for step in range(10):
        loss = torch.nn.functional.mse_loss(model(x), y)
        run.log_training_step(loss.detach(), step, model=model)
    run.finish()
    summary = steadyrun.open_run(run.id).summary
    assert summary["model/parameters"] == sum(p.numel() for p in model.parameters()) == 49
    assert summary["model/trainable_parameters"] == 49 - 32


def test_hard_inputs_never_raise_into_training_and_bin_like_numpy(new_run) -> None:
    run = new_run()
    hard = {"h/wide": [-1e308, 1e308], "h/sparse": torch.zeros(3, 3).to_sparse(),
            "h/complex": torch.ones(2, dtype=torch.complex64)}
    for key, values in hard.items():
        with pytest.warns(Warning, match=key):
            run.log_histogram(key, values)
    run.log_histogram("h/huge", torch.tensor([-3e38, 3e38, 0.0]), bins=8)
    run.log_histogram("h/big64", torch.tensor([1e39, 0.0], dtype=torch.float64), bins=8)
    run.log_histogram("h/many", torch.zeros(1 << 25, dtype=torch.int8), bins=2)
    # 300 all-NaN gradients (a diverged step): each rejected once, no recursion, one read
    named = {f"h/nan{i}": torch.full((4,), float("nan")) for i in range(300)}
    named["h/fine"] = torch.arange(4.0)
    with pytest.warns(Warning):
        run._log_histograms(named, None, 8)
    run.finish()
    data = steadyrun.open_run(run.id)
    rejected = {e["key"] for e in data.events if e["type"] == "rejected"}
    assert set(hard) <= rejected and {f"h/nan{i}" for i in range(300)} <= rejected
    got = {k: v for h in data.histograms for k, v in h["v"].items()}
    for key, values in (("h/huge", [-3e38, 3e38, 0.0]), ("h/big64", [1e39, 0.0])):
        assert got[key]["counts"] == np.histogram(values, bins=8)[0].tolist(), key
        assert got[key]["nonfinite"] == 0
    assert got["h/many"]["counts"] == [0, 1 << 25]  # int64 counts: past float32's 2**24
    assert sum(got["h/fine"]["counts"]) == 4
