"""Benchmarks: `attnlab bench attention` (every attention variant vs SDPA, an explicit softmax,
transformers' BERT attention and the O(T²) linear form; causal decoding), `attnlab bench train`
(full-model training throughput vs transformers' BERT, MFU, torch.compile vs eager, platform
overhead vs a bare loop) and `attnlab bench gpu` (one GPU: bf16 MFU, flash kernels, decoding).

Each writes JSON (the record: machine, versions, commit, command, every measurement, targets as
PASS/MISS) plus a Markdown report (and a PNG for attention) under `results/bench/`. Entry points:
`attnlab.bench.attention.run_attention_bench`, `attnlab.bench.train.run_train_bench`,
`attnlab.bench.gpu.run_gpu_bench`, and the CLI in `attnlab.bench.cli`. Modules import one way
(`config` lowest, then `common`, `references`, `layers`, `memory`, `decode`, the targets and
reports, the entry points, `cli`; a test checks there is no cycle). Nothing is imported at package
import: the peak-memory worker runs as `python -m attnlab.bench.memory`, which must not find itself
already imported.
"""
