"""`attnlab bench`: both benchmarks end to end at a tiny size (files and fields, never the numbers),
the reference layers against the variants they stand for, and the measuring tools themselves."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from attnlab.attention import ATTENTION, AttentionDims, build_attention
from attnlab.attention.masks import AttentionMask
from attnlab.bench.cli import add_parser, attention_config, main
from attnlab.bench.common import OtherLoad, peak_memory_mib, rss_peak_supported, time_rounds
from attnlab.bench.decode import PreallocatedKVDecoder
from attnlab.bench.references import REFERENCES, build_reference

TARGET_STATUS = {"PASS", "MISS", "N/A"}
MACHINE_KEYS = {"cpu_model", "cores", "torch", "transformers", "attnlab_commit", "date", "device"}


def test_attention_bench_tiny(tmp_path: Path) -> None:
    assert main(["attention", "--tiny", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "attention.json").read_text())
    assert set(data["machine"]) >= MACHINE_KEYS and data["machine"]["transformers"]
    assert data["command"].startswith("python -m attnlab.bench attention") and "--lengths 16 32 64" in data["command"]
    measured = {(r["layer"], r["T"]) for r in data["rows"] if r["status"] == "ok"}
    for name in [*ATTENTION, *REFERENCES]:
        for t in (16, 32, 64):
            assert (name, t) in measured, (name, t)
    assert all("time_ms" in r and "peak_mib" in r for r in data["rows"] if r["status"] == "ok")
    for length in ("16", "32", "64"):
        assert {"dot/sdpa", "dot/explicit_softmax", "dot/hf_bert", "linear/dot", "linear/explicit_linear",
                "talking_heads/dot"} <= set(data["ratios"][length])
    assert all("other_cpu_cores" in r for r in data["rows"] if r["status"] == "ok")  # how quiet the machine was
    assert data["machine"]["model_code"]["sha256"] and data["machine"]["load_average"]["end"]
    decode = data["decode"]
    assert decode["threads"] == 1 and [r["L"] for r in decode["rows"]] == [16, 32, 64]
    assert {"model:dot ms/token", "model:linear ms/token", "attn:dot.step ms/token", "model dot/linear",
            "model:dot state MiB"} <= set(decode["rows"][0])
    names = {t["name"]: t for t in data["targets"]}
    assert set(names) == {"dot_vs_sdpa", "linear_vs_dot", "synthesizer_random_dot_vs_dot", "synthesizer_dense_dot_vs_dot",
                          "synthesizer_random_vs_dot", "talking_heads_vs_dot", "linear_memory", "talking_heads_memory",
                          "linear_memory_vs_dot", "no_time_skips", "fast_path_parity", "decode_flat",
                          "decode_attention_vs_dot", "decode_model_vs_dot"}
    assert names["fast_path_parity"]["status"] == "PASS"  # float64 parity does not depend on the machine
    assert all(t["status"] in TARGET_STATUS and t["goal"] for t in data["targets"])
    assert names["dot_vs_sdpa"]["status"] in ("PASS", "MISS")
    md = (tmp_path / "attention.md").read_text()
    for heading in ("## Targets", "dot/sdpa", "dot/hf_bert", "linear/dot", "Linear attention memory growth",
                    "Causal decoding", data["command"]):
        assert heading in md
    assert "**PASS**" in md or "**MISS**" in md
    assert (tmp_path / "attention.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_bench_tiny(tmp_path: Path, data_root: Path) -> None:
    code = main(["train", "--tiny", "--no-compile", "--data-root", str(data_root), "--out", str(tmp_path)])
    assert code == 0
    data = json.loads((tmp_path / "train.json").read_text())
    assert set(data["machine"]) >= MACHINE_KEYS
    assert "python -m attnlab.bench train" in data["command"] and "--tiny" in data["command"]
    (size,) = data["sizes"]
    for side in ("attnlab", "hf_bert"):
        assert {"tokens_per_s", "mfu", "params", "linear_weights", "step_ms"} <= set(size[side])
    assert size["attnlab"]["linear_weights"] == size["hf_bert"]["linear_weights"]  # same size, same matmul work
    assert "attnlab/hf_bert tokens_per_s" in size and size["matmul_gflops"] > 0
    overhead = data["overhead"]
    assert overhead["status"] == "ok" and overhead["wandb_included"]
    assert [r["side"] for r in overhead["runs"]] == ["bare", "platform"]
    assert all(r["steps"] == 3 for r in overhead["runs"])
    assert {t["name"] for t in data["targets"]} == {"train_vs_hf_bert", "mfu", "compile_speedup", "compile_loss_match",
                                                    "platform_overhead"}
    assert all(t["status"] in ("PASS", "MISS") for t in data["targets"] if not t["name"].startswith("compile"))
    md = (tmp_path / "train.md").read_text()
    assert "MFU formula" in md and "Platform overhead" in md and ("**PASS**" in md or "**MISS**" in md)


def _dims(t: int = 7) -> AttentionDims:
    return AttentionDims(d_model=16, n_heads=4, key_size=4, value_size=4, max_len=t)


@pytest.mark.parametrize(("reference", "variant"), [("sdpa", "dot"), ("explicit_softmax", "dot"),
                                                      ("hf_bert", "dot"), ("explicit_linear", "linear")])
def test_reference_matches_its_variant(reference: str, variant: str) -> None:
    """Each reference computes what it claims: same weights → same output as the variant."""
    torch.manual_seed(0)
    layer: Any = build_attention(variant, _dims()).double().eval()
    ref: Any = build_reference(reference, 16, 4).double().eval()
    with torch.no_grad():
        for name in ("query", "key", "value", "output"):
            src = getattr(layer.proj, name)
            if reference == "hf_bert":
                dst = ref.output if name == "output" else getattr(ref.attention, name)
            else:
                dst = getattr(ref.proj, name)
            dst.weight.copy_(src.weight)
            dst.bias.copy_(src.bias)
    x = torch.randn(2, 7, 16, dtype=torch.float64)
    mask = AttentionMask("bidirectional")
    torch.testing.assert_close(ref(x, mask), layer(x, mask))


def test_preallocated_kv_cache_matches_dot_step() -> None:
    torch.manual_seed(0)
    layer: Any = build_attention("dot", _dims(12)).double().eval()
    prefix, tokens = torch.randn(2, 5, 16, dtype=torch.float64), torch.randn(3, 2, 1, 16, dtype=torch.float64)
    _, state = layer.prefill(prefix, AttentionMask("causal"))
    ref = PreallocatedKVDecoder(layer, prefix, capacity=8)
    for x_t in tokens:
        out, state = layer.step(x_t, state, "causal")
        torch.testing.assert_close(ref.step(x_t), out)


@pytest.mark.skipif(not rss_peak_supported(), reason="needs Linux /proc/self/clear_refs")
def test_peak_memory_sees_an_allocation_and_no_phantom() -> None:
    cpu = torch.device("cpu")
    mib = peak_memory_mib(lambda: torch.ones(64 * 2**20 // 4).sum(), cpu)  # a 64 MiB buffer, freed at once
    assert 60 <= mib <= 80, mib
    assert peak_memory_mib(lambda: None, cpu) < 8  # nothing allocated: no phantom peak from earlier


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="needs Linux /proc")
def test_other_load_is_a_core_count() -> None:
    probe = OtherLoad()
    probe.start()
    end = time.monotonic() + 0.5
    while time.monotonic() < end:  # keep one core busy ourselves: it must not count as other load
        torch.ones(64).sum()
    load = probe.stop()
    assert load is not None and 0.0 <= load <= (os.cpu_count() or 1) + 0.25  # a rate in cores, tick-rounded


def test_time_rounds_rotates_the_order() -> None:
    calls: list[str] = []
    fns = {n: (lambda n=n: calls.append(n)) for n in "abc"}
    times = time_rounds(fns, rounds=3, device=torch.device("cpu"), warmup=0)
    assert calls == list("abcbcacab") and all(len(v) == 3 for v in times.values())


def test_cli_parser_and_recorded_command() -> None:
    parser = argparse.ArgumentParser(prog="attnlab")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench", "attention", "--tiny", "--lengths", "8", "16", "--long"])
    cfg = attention_config(args)
    assert cfg.lengths == (8, 16, 8192) and cfg.d_model == 32  # explicit options beat --tiny defaults
    assert cfg.command.startswith("attnlab bench attention --lengths 8 16 8192 --batch 2")


@pytest.mark.slow
def test_train_bench_compile_tiny(tmp_path: Path) -> None:
    """`train.compile` in the train benchmark: compiled and eager copies of one model, same loss curve."""
    assert main(["train", "--tiny", "--no-overhead", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "train.json").read_text())
    (size,) = data["sizes"]
    assert "compiled/eager tokens_per_s" in size and size["compile_s"] > 0
    assert len(size["loss_curve"]["eager"]) >= 3
    names = {t["name"]: t for t in data["targets"]}
    assert names["compile_loss_match"]["status"] == "PASS"  # the same maths, compiled
    assert names["compile_speedup"]["status"] in ("PASS", "MISS")
    assert "torch.compile vs eager" in (tmp_path / "train.md").read_text()


def test_gpu_bench_runs_on_cpu_at_toy_size(tmp_path: Path) -> None:
    """`attnlab bench gpu`'s CPU-safe parts: training MFU, the attention layers, decoding, the report."""
    assert main(["gpu", "--tiny", "--device", "cpu", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "gpu.json").read_text())
    assert data["tested_on_gpu"] is False and data["dtype"] == "float32"
    assert data["training"]["tokens_per_s"] > 0 and data["training"]["mfu_vs_measured_matmul"] > 0
    assert [r["status"] for r in data["attention"]] == ["ok", "ok"]
    assert {"dot ms", "linear ms", "explicit_softmax ms"} <= set(data["attention"][0])
    assert data["attention"][0]["fla"] == "ok" or data["attention"][0]["fla"].startswith("not run")
    assert data["decode"][0]["dot ms/token"] > 0 and data["decode"][0]["linear ms/token"] > 0
    md = (tmp_path / "gpu.md").read_text()
    assert "Not a GPU run" in md and "## Training" in md and "## Causal decoding" in md


def test_bench_modules_have_no_import_cycles() -> None:
    """attnlab.bench's modules import each other one way (top-level and function-level imports alike)."""
    import ast

    import attnlab.bench as bench

    root = Path(bench.__file__).parent
    graph: dict[str, set[str]] = {}
    for path in root.glob("*.py"):
        mod = path.stem
        graph[mod] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("attnlab.bench"):
                parts = node.module.split(".")
                names = [parts[2]] if len(parts) > 2 else [a.name for a in node.names]
                graph[mod] |= {n for n in names if n != mod}
    state: dict[str, int] = {}

    def visit(mod: str, path: list[str]) -> None:
        if state.get(mod) == 1:
            raise AssertionError(f"import cycle: {' -> '.join([*path, mod])}")
        if state.get(mod) == 2:
            return
        state[mod] = 1
        for dep in sorted(graph.get(mod, ())):
            visit(dep, [*path, mod])
        state[mod] = 2

    for mod in sorted(graph):
        visit(mod, [])
    assert graph["config"] == set()  # the lowest module


def test_the_speed_cache_survives_the_reports_export_of_the_same_file(tmp_path: Path) -> None:
    """`attnlab report` on a finished linear_attention grid: the export rewrote speed.json as a plain list of rows;
    the speed table reuses it for the same variants × lengths (it crashed on it before) and re-measures otherwise."""
    import json

    from attnlab.bench.ablation_speed import speed_table

    spec = {"lengths": [8], "variants": ["dot", "linear"], "batch": 1, "d_model": 8, "n_heads": 2}
    rows = [{"variant": v, "seq_len": 8, "fwd_bwd_ms": 1.0, "peak_mem_mb": 1.0, "decode_ms_per_token": 1.0}
            for v in ("dot", "linear")]
    cache = tmp_path / "speed.json"
    cache.write_text(json.dumps(rows))
    assert speed_table(spec, cache) == rows  # reused, not re-measured (1.0 ms would not come back)
    fresh = speed_table({**spec, "lengths": [16]}, cache, rounds=1)  # another spec: measured
    assert {(r["variant"], r["seq_len"]) for r in fresh} == {("dot", 16), ("linear", 16)}
