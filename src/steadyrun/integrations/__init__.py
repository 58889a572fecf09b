"""steadyrun inside other tools: command-line flags and experiment presets for training
scripts (later: Lightning, Transformers, Accelerate). Built on the public `api`.
"""
