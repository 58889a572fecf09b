"""`steadyrun import`: W&B run folders (offline or synced) brought home as steadyrun runs.

Reads a W&B run through its transaction log (ship/wandb/txlog, streamed) and the files
beside it, and writes a steadyrun run with store/'s layout and record builders; it never
writes into the W&B folder, and a second import of the same folder changes nothing.
"""
