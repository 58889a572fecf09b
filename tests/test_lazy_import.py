"""`import steadyrun` is cheap: no wandb, torch or numpy, in a fresh interpreter."""

from __future__ import annotations

import json

import pytest

import steadyrun

HEAVY = ("wandb", "torch", "numpy", "pyarrow", "pandas", "polars")

IMPORT_ONLY = """
import sys
before = set(sys.modules)
import steadyrun
loaded = set(sys.modules) - before
import json
print(json.dumps({"heavy": [m for m in sys.argv[1:] if m in sys.modules],
                  "foreign": sorted(m for m in loaded if m.split(".")[0] != "steadyrun"
                                    and m.split(".")[0] not in sys.stdlib_module_names),
                  "version": steadyrun.__version__}))
"""

LOCAL_RUN = """
import json, sys
import steadyrun
run = steadyrun.init(mode="local", config={"lr": 0.1, "nested": {"a": 1}})
for i in range(100):
    run.log({"train/loss": 1.0 / (i + 1), "i": i})
run.log({"val/acc": 0.5}, step=10, commit=False)
run.log({"val/f1": 0.4})
run.summary["best"] = 0.5
run.log_table("t", columns=["a"], rows=[[1]])
run.alert("done")
run.flush()
run.finish()
data = steadyrun.open_run(run.id)
print(json.dumps({"rows": len(data.rows), "heavy": [m for m in sys.argv[1:] if m in sys.modules]}))
"""


def test_import_pulls_in_no_heavy_library_and_nothing_but_the_stdlib(run_python):
    """Why `import steadyrun` is cheap (benchmarks/ measures how cheap): it loads its own
    package and standard-library modules, nothing else."""
    result = json.loads(run_python(IMPORT_ONLY, *HEAVY).stdout)
    assert result["heavy"] == []
    assert result["foreign"] == []
    assert result["version"] == steadyrun.__version__


def test_a_local_run_pulls_in_no_heavy_library(run_python):
    result = json.loads(run_python(LOCAL_RUN, *HEAVY).stdout)
    assert result["rows"] == 101
    assert result["heavy"] == []


def test_disabled_run_pulls_in_no_heavy_library(run_python):
    proc = run_python(
        """
        import sys, steadyrun
        run = steadyrun.init(mode="disabled")
        run.log({"a": 1}); run.summary["b"] = 2; run.finish()
        print(",".join(m for m in sys.argv[1:] if m in sys.modules))
        """,
        *HEAVY,
    )
    assert proc.stdout.strip() == ""


@pytest.mark.parametrize("name", ["init", "Run", "InertRun", "SteadyrunWarning", "open_run",
                                  "list_runs", "RunData", "attach", "ContextError",
                                  "is_main_process"])
def test_public_core_names_resolve(name):
    assert getattr(steadyrun, name) is not None
    assert name in dir(steadyrun)


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        steadyrun.no_such_name  # noqa: B018
