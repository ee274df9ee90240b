"""`dlx bench` building blocks: Table-1-like small models on synthetic inputs, step timers, and the
suites (throughput, runner overhead, multiprocessing, CUDA allocator/async) that dlx/experiments/bench.py
runs. The models live here, not in the dlx.models registry: they exist to be timed, not trained."""
