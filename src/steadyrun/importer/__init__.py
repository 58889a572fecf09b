"""`steadyrun import`: W&B run folders (offline or synced) brought home as steadyrun runs.

Reads a W&B run through its transaction log (ship/wandb/txlog's chunk reader, streamed:
scan.py) and the files beside it, and writes a steadyrun run with store/'s layout and
record builders' shapes (convert.py, write.py); it never writes into the W&B folder, and
a second import of the same folder changes nothing (source.py: the fingerprint).

    source   the W&B runs named (grouped by run id), their fingerprint, the run id
    scan     one streamed pass over the transaction logs
    steps    which x each imported value gets (DESIGN.md section 3)
    media    images, tables, histograms, and the W&B run's files
    convert  the records, in order; run.json
    write    the segment, its digest, the temp folder renamed into place
    run      import_runs: what `steadyrun import` calls
"""

from __future__ import annotations

from .run import Outcome, import_runs
from .source import BadSource

__all__ = ["BadSource", "Outcome", "import_runs"]
