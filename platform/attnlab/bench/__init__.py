"""Benchmarks: `attnlab bench attention` (every attention variant vs SDPA, an explicit softmax,
transformers' BERT attention and the O(T²) linear form; causal decoding) and `attnlab bench train`
(full-model training throughput vs transformers' BERT, MFU, platform overhead vs a bare loop).

Each writes JSON (the record: machine, versions, commit, command, every measurement, targets as
PASS/MISS) plus a Markdown report (and a PNG for attention) under `results/bench/`. Entry points:
`attnlab.bench.attention.run_attention_bench`, `attnlab.bench.train.run_train_bench`, and the CLI
in `attnlab.bench.cli`. Submodules are imported on use: the peak-memory worker runs as
`python -m attnlab.bench.memory`, which must not find itself already imported.
"""
