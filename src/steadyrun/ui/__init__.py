"""The local dashboard (`steadyrun ui`) and the one-file report (`steadyrun report`).

Read-only views of a run root, above `read/` and `store/`: nothing here writes a run.
numpy and pyarrow (the `ui` extra) are imported by these modules, which only the two
commands import: `import steadyrun` never loads them.
"""
