"""Sinks and the sidecar that feeds them: the shipping loop, its cursor, the sidecar
process with its supervisor, and one folder per sink (`wandb/`).

Imports only `store/`. The training process holds a `handle.SidecarHandle`; the
sidecar itself is `python -m steadyrun.ship`.
"""
