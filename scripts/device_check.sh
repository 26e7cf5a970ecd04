#!/usr/bin/env bash
# CUDA/bf16 check of the trainer and the HF engine (benchmarks/device_check.py) on a GPU machine whose
# Python has torch, transformers and peft but none of steprl's other dependencies, and no network.
#
#   OUT=/tmp/devout bash scripts/device_check.sh          # report: $OUT/device_check.json (+ .log)
#   bash scripts/device_check.sh --build-wheels           # (re)fill ./wheels from the package index
#   bash scripts/device_check.sh --install-only           # only the offline installs (for benchmarks/probes/)
#
# What the image lacks comes from ./wheels (git-ignored; ~24 MB; carry it to the GPU machine):
# pydantic (+ pydantic-core for CPython 3.10-3.14, x86_64 and aarch64, annotated-types,
# typing-inspection, typing-extensions), gymnasium (+ cloudpickle, farama-notifications) and
# setuptools (to build steprl's editable install offline). TextWorld is not needed: the
# end-to-end check trains on the test suite's toy corridor env. When everything already
# imports (a dev venv), nothing is installed.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WHEELS="$ROOT/wheels"
PY=${PYTHON:-$(command -v python || command -v python3)}

# Exact versions of this repo's dev venv; pydantic-core has one binary wheel per CPython and arch.
PURE="pydantic==2.14.4 annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions==4.16.0 gymnasium==1.4.0 cloudpickle==3.1.3 farama-notifications==0.0.6 setuptools==78.1.1"
CORE="pydantic-core==2.50.5"

if [ "${1:-}" = "--build-wheels" ]; then
  mkdir -p "$WHEELS"
  for v in 3.10 3.11 3.12 3.13 3.14; do
    for arch in x86_64 aarch64; do
      "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$v" --implementation cp \
        --platform "manylinux2014_$arch" --platform "manylinux_2_17_$arch" -d "$WHEELS" $CORE $PURE
    done
  done
  du -sh "$WHEELS"
  exit 0
fi

OUT=${OUT:-/tmp/device_check_out}
mkdir -p "$OUT"
LOG="$OUT/device_check.log"
: >"$LOG"
say() { echo "$*" | tee -a "$LOG"; }
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false HF_HUB_DISABLE_PROGRESS_BARS=1
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_ROOT_USER_ACTION=ignore

say "# python: $PY ($("$PY" -c 'import platform, sys; print(platform.python_version(), platform.machine())'))"
"$PY" -c 'import torch, transformers, peft; print("# torch", torch.__version__, "cuda", torch.version.cuda,
"available", torch.cuda.is_available(), "| transformers", transformers.__version__, "| peft", peft.__version__)' \
  2>&1 | tee -a "$LOG"

# -- dependencies: pydantic, gymnasium (offline, from ./wheels) ---------------------------------------
if "$PY" -c "import pydantic, gymnasium" 2>/dev/null; then
  say "# pydantic and gymnasium already import: nothing to install"
else
  [ -d "$WHEELS" ] || { say "error: $WHEELS is missing (carry it, or build it: bash scripts/device_check.sh --build-wheels)"; exit 2; }
  t0=$(date +%s)
  # the machine's own pip config (index, constraints) has no say here
  if PIP_CONFIG_FILE=/dev/null PIP_BREAK_SYSTEM_PACKAGES=1 "$PY" -m pip install -q --no-index --find-links "$WHEELS" \
       pydantic gymnasium >>"$OUT/install.log" 2>&1; then
    say "# installed pydantic, gymnasium from wheels/ in $(( $(date +%s) - t0 ))s"
  else
    # no pip, or a read-only site-packages: unpack the wheels that fit this interpreter onto PYTHONPATH
    DEPS="${TMPDIR:-/tmp}/steprl-device-deps"
    rm -rf "$DEPS" && mkdir -p "$DEPS"
    "$PY" - "$WHEELS" "$DEPS" <<'EOF' >>"$OUT/install.log" 2>&1
import platform, sys, zipfile
from pathlib import Path
wheels, deps = Path(sys.argv[1]), sys.argv[2]
tag, arch = f"cp{sys.version_info[0]}{sys.version_info[1]}-", platform.machine()
for wheel in sorted(wheels.glob("*.whl")):
    name = wheel.name
    if name.startswith("setuptools"):
        continue
    if "-none-any" not in name and not (tag in name and arch in name):
        continue
    zipfile.ZipFile(wheel).extractall(deps)
    print("unpacked", name)
EOF
    export PYTHONPATH="$DEPS${PYTHONPATH:+:$PYTHONPATH}"
    say "# pip install failed (see install.log); unpacked the wheels onto PYTHONPATH=$DEPS"
  fi
  "$PY" -c "import pydantic, gymnasium" 2>&1 | tee -a "$LOG" || true
fi

# -- steprl itself: editable install (steprl.trainer → trainer/ ...), else device_check.py maps the checkout --
if ! "$PY" -c "import steprl.trainer" >/dev/null 2>&1; then
  t0=$(date +%s)
  if PIP_CONFIG_FILE=/dev/null PIP_BREAK_SYSTEM_PACKAGES=1 "$PY" -m pip install -q --no-index --find-links "$WHEELS" \
       --no-deps -e . >>"$OUT/install.log" 2>&1; then
    say "# pip install -e . (no deps) in $(( $(date +%s) - t0 ))s"
  else
    say "# editable install failed (see install.log): device_check.py imports steprl from the checkout"
  fi
fi

if [ "${1:-}" = "--install-only" ]; then
  "$PY" -c "import steprl.trainer, pydantic, gymnasium" 2>&1 | tee -a "$LOG"
  exit "${PIPESTATUS[0]}"
fi

# -- the check ------------------------------------------------------------------------------------
TIMEOUT=()
command -v timeout >/dev/null 2>&1 && TIMEOUT=(timeout "${DEVICE_CHECK_TIMEOUT:-420}")
"${TIMEOUT[@]}" "$PY" benchmarks/device_check.py --out "$OUT/device_check.json" "$@" 2>&1 \
  | grep --line-buffered -v -E "^(Loading weights|Writing model shards)" | tee -a "$LOG"
rc=${PIPESTATUS[0]}
[ "$rc" = 124 ] && say "error: device_check.py ran past ${DEVICE_CHECK_TIMEOUT:-420}s (partial report kept)"
"$PY" - "$OUT/device_check.json" <<'EOF' 2>&1 | tee -a "$LOG"
import json, sys
try:
    report = json.load(open(sys.argv[1]))
except Exception as exc:
    sys.exit(f"no report: {exc}")
env, checks = report["environment"], report["checks"]
print(f"== device_check summary: {env['device']} {env.get('gpu', '')} torch {env['torch']} "
      f"transformers {env['transformers']} peft {env['peft']} python {env['python']}")
for c in checks:
    f = c["figures"]
    keys = ("max_abs_diff", "weights_max_diff", "optimizer_max_diff", "next_update_weights_max_diff", "update_s",
            "wall_s", "peak_cuda_mib", "peak_cuda_mib_steady_update", "tokens_per_s", "synced_engine_max_diff")
    brief = {k: f[k] for k in keys if k in f}
    for k in ("vs_trainer_greedy", "vs_trainer_sampled", "engine_on_lora_module_vs_trainer"):
        if k in f:
            brief[k + ".max"] = f[k]["max_abs_diff"]
    if "metrics" in f:
        brief["loss"] = f["metrics"].get("train/loss")
    print(f"{'PASS' if c['ok'] else 'FAIL'} {c['name']}: {json.dumps(brief)}")
    for what in c["failures"]:
        print(f"   expected: {what}")
    if c["error"]:
        print(f"   error: {c['error'][:300]}")
s = report["summary"]
print(f"== {s['passed']} passed, {s['failed']} failed {s['failed_checks'] or ''} in {report.get('total_s', '?')}s")
EOF
exit "$rc"
