"""edgesam benchmarks: how fast, how heavy, and how far from the limit.

Run ``python -m benchmarks`` from the repository root (``--quick`` for a smoke
test, ``--help`` for the options). Every SDK number is paired with a bare
onnxruntime baseline on the same model file and input, measured in the same run
and interleaved with it, so that the ratios survive a noisy machine.

This package imports nothing at import time: the cold-start child processes
(:mod:`benchmarks._child`) start their clocks before numpy or onnxruntime load.
"""
