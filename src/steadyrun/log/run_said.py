"""What a Run says and records about what it was given: rejected input, values replaced
in a pending row, steps that went back, and what arrives after `finish()`.

Part of the Run (a mixin of run.py, like run_extras.py): one place for the rule that
nothing is refused or replaced silently. Each problem is warned once, with the user's
file and line, recorded as an event in the run, and counted when it repeats.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any

from ..store import records
from ..store.layout import hostname, segment_path
from ..store.steps import namespace_of_step
from ..store.values import SteadyrunWarning
from .callsite import user_site, user_stacklevel


class RunSaid:
    """Mixed into `Run` (run.py), whose fields these are."""

    # What run.py provides (declared for readers and type checkers).
    id: str
    dir: Path
    strict: bool
    _append: Any
    _writer: Any
    _sidecar: Any
    _warned: set[Any]
    _overwritten: dict[str, int]
    _rejected_counts: dict[tuple[str, str, str], int]
    _late_warned: bool

    def _overwrote(self, keys: set[str]) -> None:
        """Keys logged again with commit=False before the pending row was committed.

        W&B keeps only the last value of a key in a row, and so does the row here; but
        "cannot lose a value" means the user hears of it: one warning per key with a hint,
        one `overwritten` event when it first happens, and a count per key at finish."""
        site = None
        for key in sorted(keys):
            n = self._overwritten.get(key, 0)
            self._overwritten[key] = n + 1
            if n:
                continue
            site = site or user_site()
            self._append(records.encode(records.event("overwritten", key=key, site=site)))
            warnings.warn(
                f"steadyrun: {key!r} was logged again before the pending row (commit=False) "
                f"was committed, at {site}: the row keeps only the last value (W&B's rule). To keep every value, log it with its own step= or in a namespace of "
                f"its own (e.g. 'batch/loss' committed each batch). Counted as 'overwritten' "
                f"events; warned once per key.", SteadyrunWarning, stacklevel=user_stacklevel())

    def _regressed(self, step_key: str, prev: Any, new: Any) -> None:
        ns = namespace_of_step(step_key) or "<root>"
        site = user_site()
        self._append(records.encode(records.event(
            "step_regression", namespace=ns, step_metric=step_key, previous=prev, step=new,
            site=site)))
        if ("regression", step_key) not in self._warned:
            self._warned.add(("regression", step_key))
            warnings.warn(
                f"steadyrun: step of namespace {ns!r} went back from {prev} to {new} at {site}. "
                f"The row is kept (W&B will not drop it); further regressions in this "
                f"namespace are recorded as step_regression events without a warning.",
                SteadyrunWarning, stacklevel=user_stacklevel())

    def _bad(self, key: Any, value: Any, reason: str,
             exc_type: type[Exception] = TypeError) -> None:
        """Strict: raise. Default: warn once per distinct problem and record it as a
        `rejected` event; repeats of a problem are counted (`rejected_count` at finish).

        A problem is a key with a kind of value and an error: `step=1.5`, `step=2**70`
        and `step="7"` are three problems, each warned and recorded, while the same bad
        key logged every step is one warning, one event and a count."""
        label = key if isinstance(key, str) else repr(key)
        if self.strict:
            raise exc_type(f"steadyrun: {label!r}: {reason}")
        value_type = type(value).__name__
        problem = (label, value_type, exc_type.__name__)
        count = self._rejected_counts.get(problem, 0)
        self._rejected_counts[problem] = count + 1
        if count:
            return
        site = user_site()
        self._append(records.encode(records.event(
            "rejected", key=label[:500], value_type=value_type, reason=reason, site=site)))
        warnings.warn(f"steadyrun: skipped {label!r} ({value_type}): {reason} [at {site}]. "
                      f"Recorded as a 'rejected' event; warned once per key and kind of "
                      f"value.", SteadyrunWarning, stacklevel=user_stacklevel())

    def _late_append(self, item: Any) -> None:
        """A record made after `finish()` (a summary or config update, a refused `log`).

        The run's segment is sealed: its last record says how the run ended, and readers
        and the sidecar rely on that. So a late record goes into a small segment of its
        own (open, the record, close), written and fsynced at once: the value is kept,
        never dropped. The sidecar ships it if it is still shipping; a W&B run that was
        already finished gets it from `steadyrun sync`, as the warning says.
        """
        name = f"late-{os.getpid()}-{os.urandom(2).hex()}"
        data = (records.encode(records.opened(name, "late", os.getpid(), hostname()))
                + item + records.encode(records.closed(0, "finished")))
        try:
            fd = os.open(segment_path(self.dir, name), os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                         0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            print(f"steadyrun: cannot record an update made after finish() in {self.dir} "
                  f"({exc}); it is lost", file=sys.stderr)
            return
        if not self._late_warned and not item.startswith(b'{"k":"event"'):
            self._late_warned = True  # a refused log() has its own warning
            ship = (f"; W&B gets it from `steadyrun sync {self.id}` if its run was already "
                    f"finished" if self._sidecar is not None else "")
            warnings.warn(f"steadyrun: run {self.id} is finished; what is recorded after "
                          f"finish() (summary, config) is kept in a segment of its own"
                          f"{ship}. Warned once per run.", SteadyrunWarning,
                          stacklevel=user_stacklevel())
