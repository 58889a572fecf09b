"""Readers and queries over runs on disk: `open_run` (everything a run holds) and the
cheap overview that `steadyrun runs` lists. Imports only `store/`.
"""
