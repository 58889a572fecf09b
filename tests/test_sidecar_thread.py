"""The thread fallback: where no process can be spawned, the same shipping runs in a thread."""

from __future__ import annotations

from pathlib import Path

from wandb_helpers import column, run_script, wandb_log

THREADED = """
import steadyrun
run = steadyrun.init(project="thread", sidecar="thread", config={"a": {"b": 1}})
for i in range(300):
    run.log({"train/loss": float(i)})
run.log_summary({"acc": 0.9}, prefix="eval")
run.finish()
print("RUN=" + run.id)
"""


def test_thread_sidecar_ships_everything_once(tmp_path: Path) -> None:
    done = run_script(tmp_path, THREADED)
    log = wandb_log(done.rdir)
    assert column(log, "train/loss") == [float(i) for i in range(300)]
    assert log.summary["eval/acc"] == 0.9
    assert log.config["a"] == {"b": 1}
    assert log.metrics["train/loss"]["step_metric"] == "train/step"
    assert log.exit_code == 0
