"""The W&B sink: records mapped onto W&B runs, the opt-in row budget, the upload of
offline folders, the online/offline choice, and a reader of W&B's own transaction log.

The only place that imports wandb, and only in the sidecar.
"""
