"""The Run's baseline: `run.set_baseline(...)` and the live regression check's hooks.

Part of the Run (a mixin of run.py, like run_extras.py and run_said.py). Resolving a
baseline reads other runs, which is read/'s work and log/ may not import it: `init`
hands the Run a resolver (api.py, `_baseline_resolver`) that returns plain data
(read/baseline.live_spec), and the check itself (log/regression.py) runs on the
writer thread, from the digest keeper's fold, never in `log()`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ..store.manifest import update_manifest


class RunBaseline:
    """Mixed into `Run` (run.py), whose fields these are."""

    dir: Path
    role: str
    _port: Any
    _digest: Any
    _bad: Any
    alert: Any
    # The live check (log/regression.RegressionWatch), or None; swapped as one object.
    _regression: Any = None
    # (ref, regression, k) -> plain data (read/baseline.live_spec), given by api.py.
    _baseline_resolver: Any = None

    def _set_up_baseline(self, ref: Any, spec: dict[str, Any] | None, refused: str | None,
                         resolve: Any) -> None:
        """From `init` (api.py through run_start): the baseline read for this run, or why
        it was refused (warned once and recorded here; strict runs raised in init), and
        the resolver `set_baseline` uses."""
        self._baseline_resolver = resolve
        if spec is not None:
            self._use_baseline(spec)
        elif refused is not None:
            self._bad("baseline", ref, refused, ValueError)

    def set_baseline(self, baseline: str, regression: Any = None, k: float | None = None
                     ) -> None:
        """Judge this run against `baseline` from now on ("<run id>", "best",
        "tag:NAME", "group:NAME", "latest"), with `regression` rules ({key: tolerance})
        and noise band width `k` (default 2). Kept in run.json (owner). A baseline that
        cannot be used is refused like bad input: warned and recorded, or raised in
        strict mode; training goes on with the previous one."""
        resolve = self._baseline_resolver
        if resolve is None:
            self._bad("baseline", baseline, "this Run was not made by steadyrun.init, so it "
                      "cannot read other runs", RuntimeError)
            return
        try:
            spec = resolve(baseline, regression, k)
        except ValueError as exc:  # store/rules.RuleError, BaselineError
            self._bad("baseline", baseline, str(exc), ValueError)
            return
        if self._digest is not None:
            # The rows logged before this call are judged by the previous baseline (or
            # none): fold them now, so the new one starts with the next row.
            self._digest.update(limit=None)
        self._use_baseline(spec, write=True)

    def _use_baseline(self, spec: dict[str, Any], write: bool = False) -> None:
        from .regression import RegressionWatch

        self._regression = RegressionWatch(spec, self._port.record, self.alert)
        if write and self.role == "owner":
            entry = {f: spec.get(f) for f in ("ref", "runs", "rules", "k")}
            try:
                update_manifest(self.dir, baseline=entry)
            except OSError as exc:
                print(f"steadyrun: cannot keep the baseline in run.json ({exc}); the live "
                      f"check still uses it", file=sys.stderr)

    def _observe_rows(self, recs: list[dict[str, Any]]) -> None:
        """The digest keeper's observer: records it has just folded (writer thread)."""
        watch = self._regression
        if watch is not None:
            watch.observe(recs)

    def _baseline_final(self) -> None:
        """At finish, before the close record: the last rows, then the summary values."""
        watch = self._regression
        if watch is None or self._digest is None:
            return
        try:
            self._digest.update(limit=None)  # observes the rows not folded yet
            watch.final(self._digest.state)
        except Exception as exc:  # noqa: BLE001 - never into training
            print(f"steadyrun: the final regression check failed ({exc!r})", file=sys.stderr)
