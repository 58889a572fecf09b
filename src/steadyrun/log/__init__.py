"""The training side: the `Run` a script holds and everything it writes into its own
segment (rows, summary, config, tables, media, histograms, checkpoints, metadata).

Imports only `store/`: nothing here reads other runs or talks to W&B.
"""
