"""What a run is on disk: the names of its files, its records, how segments are read,
the step rules, redaction and what counts as a value.

The bottom layer: it imports nothing else of steadyrun, so the training side, the
readers and the shippers all agree on one format.
"""
