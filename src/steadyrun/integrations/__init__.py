"""steadyrun inside other tools, built on the public `api`: command-line flags and
experiment presets for training scripts (argparse_flags, presets), one adapter module per
framework (lightning, transformers, accelerate: each imports its framework, and only
when the user imports it), and wandb's module API for `import steadyrun as wandb`
(wandb_api).
"""
