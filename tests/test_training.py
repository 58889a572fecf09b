"""log_training_step, deferred tensors and the training helpers (DESIGN.md section 5).

A real tiny torch model trains on the CPU; results are read back with `open_run`.
Host syncs are counted with a TorchFunctionMode that sees every `.item()`, `.tolist()`,
`.cpu()`, `float()`... on any tensor, and with a tensor subclass for the values the user
hands over.
"""

from __future__ import annotations

import collections
import math
import random

import pytest

torch = pytest.importorskip("torch")
from torch.overrides import TorchFunctionMode  # noqa: E402

import steadyrun  # noqa: E402
from steadyrun import InertRun, Run  # noqa: E402
from steadyrun.log import deferred  # noqa: E402

SYNC_NAMES = {"item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__", "__index__"}


class CountSyncs(TorchFunctionMode):
    """Counts every call that turns a tensor into host values."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter[str] = collections.Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in SYNC_NAMES:
            self.counts[name] += 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class CountingTensor(torch.Tensor):
    """A tensor that counts the synchronising calls made on it (and on its results)."""

    syncs = 0

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in SYNC_NAMES:
            CountingTensor.syncs += 1
        return super().__torch_function__(func, types, args, kwargs or {})


@pytest.fixture
def defer_cpu(monkeypatch):
    """Hold CPU tensors as if they lived on a GPU (CPU ones are read at once otherwise)."""
    monkeypatch.setattr(deferred, "DEFER_CPU", True)


def _setup(lrs=(0.1, 0.1), seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    opt = torch.optim.SGD([{"params": model[0].parameters(), "lr": lrs[0]},
                           {"params": model[2].parameters(), "lr": lrs[1]}])
    x, y = torch.randn(64, 8), torch.randn(64, 1)
    return model, opt, x, y


def _train(run, steps, lrs=(0.1, 0.1), scaler=None, batch_size=64, record=None):
    model, opt, x, y = _setup(lrs)
    for step in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        if record is not None:
            record.append((loss.item(), steadyrun.compute_grad_norm(model).item()))
        run.log_training_step(loss, step, batch_size=batch_size, optimizer=opt, model=model,
                              scaler=scaler)
    return model, opt


# ---------------------------------------------------------------------- the keys
def test_log_training_step_logs_every_interval_with_all_keys(new_run, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")  # rank 0 of 4: samples/sec is global
    run = new_run(log_interval=10)
    assert run.log_interval == 10
    seen: list[tuple[float, float]] = []
    scaler = torch.amp.GradScaler("cpu", init_scale=256.0)
    _train(run, 35, lrs=(0.1, 0.1), scaler=scaler, record=seen)
    run.finish()

    data = steadyrun.open_run(run.id)
    rows = [r for r in data.rows if "loss/total" in r]
    assert [r["_x"] for r in rows] == [0, 10, 20, 30, 34]  # the last at finish: steps 31-34
    assert all(r["loss/step"] == r["_x"] and r["train/step"] == r["_x"] for r in rows)
    losses = [loss for loss, _ in seen]
    # loss/total is the mean over the steps since the previous row
    assert rows[0]["loss/total"] == pytest.approx(losses[0], rel=1e-6)
    assert rows[1]["loss/total"] == pytest.approx(sum(losses[1:11]) / 10, rel=1e-5)
    assert rows[4]["loss/total"] == pytest.approx(sum(losses[31:35]) / 4, rel=1e-5)
    # grad norm and lr are those of the logging step itself (scaled grads under AMP)
    assert rows[1]["train/grad_norm"] == pytest.approx(seen[10][1], rel=1e-5)
    assert all(r["train/lr"] == pytest.approx(0.1) for r in rows)
    assert all(r["train/amp_scale"] == 256.0 for r in rows)
    assert "perf/steps_per_sec" not in rows[0]  # no interval yet
    for r in rows[1:]:
        assert r["perf/steps_per_sec"] > 0
        assert r["perf/samples_per_sec"] == pytest.approx(r["perf/steps_per_sec"] * 64 * 4)
    assert not any(k.startswith("gpu/") for r in data.rows for k in r)  # no GPU here
    assert not data.anomalies


def test_param_groups_with_different_lr_are_logged_per_group(new_run):
    run = new_run(log_interval=5)
    _train(run, 6, lrs=(0.1, 0.01))
    run.finish()
    rows = [r for r in steadyrun.open_run(run.id).rows if "loss/total" in r]
    assert rows[0]["train/lr/group0"] == pytest.approx(0.1)
    assert rows[0]["train/lr/group1"] == pytest.approx(0.01)
    assert "train/lr" not in rows[0]
    assert rows[0]["train/lr/step"] == 0


def test_dict_losses_log_each_part_and_a_total(new_run):
    run = new_run(log_interval=2)
    for step in range(4):
        run.log_training_step({"ar": torch.tensor(1.0 + step), "fm": 0.5}, step)
    run.log_training_step({"total": torch.tensor(9.0), "ar": 4.0}, 4)
    run.finish()
    rows = [r for r in steadyrun.open_run(run.id).rows if "loss/ar" in r]
    assert rows[0]["loss/ar"] == 1.0 and rows[0]["loss/fm"] == 0.5
    assert rows[0]["loss/total"] == 1.5  # no 'total' given: the parts' sum
    assert rows[1]["loss/ar"] == pytest.approx(2.5)  # steps 1-2
    assert rows[1]["loss/total"] == pytest.approx(3.0)
    assert rows[-1]["_x"] == 4 and rows[-1]["loss/total"] == 9.0


def test_nan_loss_is_kept_and_flagged(new_run):
    run = new_run(log_interval=1)
    run.log_training_step(torch.tensor(float("nan")), 0)
    run.log_training_step(2.0, 1)
    run.finish()
    data = steadyrun.open_run(run.id)
    assert math.isnan(data.rows[0]["loss/total"]) and data.rows[1]["loss/total"] == 2.0
    assert [a["key"] for a in data.anomalies] == ["loss/total"]


# ---------------------------------------------------------------------- no sync per step
def test_log_training_step_reads_the_device_once_per_interval(new_run):
    run = new_run(log_interval=10)
    model, opt, x, y = _setup()
    counter = CountSyncs()
    with counter:
        for step in range(1000):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            run.log_training_step(loss, step, batch_size=64, optimizer=opt, model=model)
    assert counter.total == 100, counter.counts  # one .tolist() per row, none in between
    assert set(counter.counts) == {"tolist"}
    run.finish()  # adds the row of steps 991-999
    xs = [r["_x"] for r in steadyrun.open_run(run.id).rows if "loss/total" in r]
    assert xs == [*range(0, 1000, 10), 999]

    # the pattern of seeds 003/004, for comparison: loss.item() every step
    counter = CountSyncs()
    with counter:
        for _ in range(1000):
            loss = torch.nn.functional.mse_loss(model(x), y)
            _ = loss.item()
    assert counter.total == 1000


def test_run_log_with_tensors_syncs_once_per_interval_and_keeps_every_row(new_run, defer_cpu):
    run = new_run(log_interval=10)
    CountingTensor.syncs = 0
    expected = []
    for i in range(1000):
        value = torch.tensor(float(i) / 7).as_subclass(CountingTensor)
        expected.append(float(torch.tensor(float(i) / 7)))
        run.log({"train/loss": value, "train/plain": i})
        if i == 4:
            assert CountingTensor.syncs == 0  # nothing read yet: the rows wait on the device
    assert CountingTensor.syncs == 100
    run.finish()
    data = steadyrun.open_run(run.id)
    column = data.column("train/loss")
    assert [v for _, v in column] == expected
    assert [s for s, _ in column] == list(range(1000))
    assert [r["train/plain"] for r in data.rows] == list(range(1000))


def test_tensor_rows_keep_their_call_order_step_and_time(new_run, defer_cpu):
    run = new_run(log_interval=100)
    run.log({"a": 1.0})
    run.log({"a": torch.tensor(2.0), "b": torch.tensor(3, dtype=torch.int64)})
    run.log({"a": 3.0})
    run.log({"val/acc": torch.tensor(0.5)}, step=7)
    run.log({"c": torch.tensor(True)}, commit=False)
    run.log({"d": 1.5})
    run.flush()  # reads the buffered tensors without waiting for the interval
    data = steadyrun.open_run(run.id)
    assert [r["_x"] for r in data.rows] == [0, 1, 2, 7, 3]
    assert data.rows[1]["a"] == 2.0 and data.rows[1]["b"] == 3 and type(data.rows[1]["b"]) is int
    assert data.rows[3]["val/acc"] == 0.5 and data.rows[3]["val/step"] == 7
    assert data.rows[4] == {"c": True, "d": 1.5, "step": 3, "_x": 3}
    run.finish()


def test_cpu_tensors_are_read_at_once_since_nothing_waits_on_a_device(new_run):
    run = new_run(log_interval=100)
    CountingTensor.syncs = 0
    run.log({"a": torch.tensor(2.5).as_subclass(CountingTensor)})
    assert CountingTensor.syncs == 1
    # Read and written at once: in the segment before any flush, never held.
    assert steadyrun.open_run(run.id).rows[0]["a"] == 2.5
    assert len(run._deferred) == 0


def test_a_logged_tensor_is_copied_so_later_in_place_edits_do_not_change_it(new_run, defer_cpu):
    run = new_run()
    acc = torch.zeros(())
    for i in range(5):
        acc += i
        run.log({"acc": acc})
    acc.zero_()
    run.finish()
    assert [r["acc"] for r in steadyrun.open_run(run.id).rows] == [0.0, 1.0, 3.0, 6.0, 10.0]


def test_tensor_values_nonfinite_and_bad_shapes(new_run, defer_cpu):
    run = new_run()
    with pytest.warns(steadyrun.SteadyrunWarning, match="shape"):
        run.log({"inf": torch.tensor(float("inf")), "vec": torch.ones(3),
                 "one": torch.ones(1, 1, requires_grad=True) * 2})
    run.finish()
    data = steadyrun.open_run(run.id)
    assert data.rows[0]["inf"] == math.inf and data.rows[0]["one"] == 2.0
    assert "vec" not in data.rows[0]
    assert {a.get("key") for a in data.anomalies} == {"inf", "vec"}


# ---------------------------------------------------------------------- helpers
def test_compute_grad_norm_lr_and_amp_scale_helpers():
    model, opt, x, y = _setup(lrs=(0.1, 0.2))
    assert steadyrun.compute_grad_norm(model) is None  # no gradients yet
    torch.nn.functional.mse_loss(model(x), y).backward()
    manual = torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters()))
    norm = steadyrun.compute_grad_norm(model)
    assert isinstance(norm, torch.Tensor) and norm.item() == pytest.approx(manual.item())
    assert steadyrun.compute_grad_norm(list(model.parameters())).item() == pytest.approx(
        manual.item())
    assert steadyrun.get_learning_rate(opt) == [0.1, 0.2]
    for group in opt.param_groups:
        group["lr"] = 0.05
    assert steadyrun.get_learning_rate(opt) == 0.05
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    assert steadyrun.get_learning_rate(sched) == 0.05
    assert steadyrun.get_amp_scale(torch.amp.GradScaler("cpu", init_scale=128.0)) == 128.0
    assert steadyrun.get_amp_scale(torch.amp.GradScaler("cpu", enabled=False)) is None
    assert steadyrun.get_amp_scale(None) is None
    assert steadyrun.get_gpu_stats() == {}  # no GPU in use on this machine


def test_set_seeds_makes_python_numpy_and_torch_repeatable():
    np = pytest.importorskip("numpy")

    def draw():
        return random.random(), float(np.random.rand()), torch.rand(3).tolist()

    seeds = steadyrun.set_seeds(1234)
    first = draw()
    steadyrun.set_seeds(1234)
    assert draw() == first
    assert seeds["python"] == seeds["numpy"] == seeds["torch"] == 1234
    assert seeds["deterministic"] is False


def test_two_runs_with_the_same_seed_log_the_same_metrics(new_run):
    def one():
        steadyrun.set_seeds(7)
        run = new_run(log_interval=5)
        model = torch.nn.Linear(4, 1)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for step in range(20):
            x = torch.randn(16, 4)
            loss = (model(x) - x.sum(1, keepdim=True)).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            run.log_training_step(loss, step, optimizer=opt, model=model)
        run.finish()
        return [{k: v for k, v in r.items() if not k.startswith("perf/")}
                for r in steadyrun.open_run(run.id).rows]

    assert one() == one()


def test_interval_arguments_are_checked_and_the_inert_run_has_the_same_surface(new_run):
    with pytest.raises(ValueError, match="log_interval"):
        steadyrun.init(mode="local", log_interval=0)
    assert new_run(log_interval=3, gpu_stats_interval=7).gpu_stats_interval == 7
    public = {n for n in dir(Run) if not n.startswith("_")}
    missing = {n for n in public if not hasattr(InertRun, n)}
    assert not missing, missing
    inert = steadyrun.init(mode="disabled")
    inert.log_training_step(torch.tensor(1.0), 0, optimizer=None)
    assert inert.log_checkpoint("nowhere") is None


def test_steps_between_rows_write_nothing_and_read_nothing(new_run):
    """Between two rows a step only accumulates on the device: no record, no sync.

    (What it costs is measured by benchmarks/, never timed here.)"""
    run = new_run(log_interval=1000)
    loss = torch.tensor(0.5)
    run.log_training_step(loss, 0, batch_size=8)  # step 0 writes the first row
    run.flush()
    written = run._writer.bytes_written
    counter = CountSyncs()
    with counter:
        for step in range(1, 999):
            run.log_training_step(loss, step, batch_size=8)
    run.flush()
    assert counter.total == 0, counter.counts
    assert run._writer.bytes_written == written
    assert [r["_x"] for r in steadyrun.open_run(run.id).rows] == [0]
