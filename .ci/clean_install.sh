#!/usr/bin/env bash
# CI: a clean install works. Builds the wheel, installs it into a fresh venv WITHOUT dev extras (torch CPU
# wheel first, as the Makefile does; pip's cache is reused), then runs a smoke reproduction and a report from
# a directory outside the checkout. Fails on any error, or when an expected output is missing.
set -euo pipefail
CHECKOUT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
TORCH_CPU_VERSION="${TORCH_CPU_VERSION:-$(sed -n 's/^TORCH_CPU_VERSION ?= //p' "$CHECKOUT/Makefile")}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export ATTNLAB_DATA="${ATTNLAB_DATA:-$(cd "$CHECKOUT/.." && pwd)/shared/data}"
export WANDB_MODE=offline
unset ATTNLAB_ROOT ATTNLAB_RESULTS PYTHONPATH WANDB_DIR
started=$(date +%s)

# The checkout's venv has setuptools: build without an isolated build env (no download).
"$CHECKOUT/.venv/bin/pip" wheel -q --no-deps --no-build-isolation -w "$WORK/dist" "$CHECKOUT"
WHEEL=$(ls "$WORK"/dist/attnlab-*.whl)

"$PYTHON" -m venv "$WORK/venv"
# --no-compile: byte-compiling every installed file (torch alone has thousands) is most of pip's CPU time here;
# Python compiles the modules it imports on first use instead.
PIP=("$WORK/venv/bin/pip" install -q --no-compile)
if command -v nvidia-smi >/dev/null 2>&1; then "${PIP[@]}" torch; else
  "${PIP[@]}" "torch==$TORCH_CPU_VERSION" ||
    "${PIP[@]}" "torch==$TORCH_CPU_VERSION" --index-url https://download.pytorch.org/whl/cpu
fi
"${PIP[@]}" "$WHEEL"
echo "clean install: $(basename "$WHEEL") installed in $(( $(date +%s) - started )) s"

# Outside the checkout: the shipped ablations/ and sweeps/ are used, results go under the working directory.
mkdir -p "$WORK/user" && cd "$WORK/user"
ATTNLAB="$WORK/venv/bin/attnlab"
"$WORK/venv/bin/python" - <<'PY'
import attnlab, attnlab.paths as p
assert not p.in_checkout(), attnlab.__file__
assert (p.ablations_dir() / "synthesizer.yaml").is_file(), p.ablations_dir()
PY
"$ATTNLAB" list attention >/dev/null
"$ATTNLAB" reproduce synthesizer --preset smoke --wandb offline
"$ATTNLAB" report synthesizer --preset smoke --wandb off
for f in results/synthesizer/leaderboard.md results/synthesizer/report.html results/synthesizer/records.jsonl; do
  test -s "$f" || { echo "clean install: $f missing" >&2; exit 1; }
done
test -n "$(ls -d results/wandb/offline-run-* 2>/dev/null)" || { echo "clean install: no W&B run" >&2; exit 1; }
echo "clean install: OK in $(( $(date +%s) - started )) s"
