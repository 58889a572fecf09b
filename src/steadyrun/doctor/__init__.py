"""`steadyrun doctor`: the seeds' bugs found in any W&B run folder, and in steadyrun runs.

Reads W&B folders through their transaction log (ship/wandb/txlog, streamed) and the
files beside it; reads steadyrun runs through read/. Each finding has a stable code, a
severity, the run, the keys, the evidence and the fix.
"""
