#!/usr/bin/env bash
# Probe: does a bigger tiny model with a longer SFT warm start give the shop and the apps world an SFT start
# above 0, and does GiGPO / GRPO move it? One seed of benchmarks/suites/{webshop,apps}.yaml, changed as below,
# through the harness (steprl bench), both suites side by side, on a GPU machine (fp32: bf16 SFT went NaN there).
#   OUT=/tmp/probe bash benchmarks/probes/family_rl.sh     # on a GPU machine (runs scripts/device_check.sh's installs)
#   SCALE=0.002 EVAL_TASKS=2 bash benchmarks/probes/family_rl.sh   # a dry run on CPU
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/family_probe}
mkdir -p "$OUT/suites"
PY=${PYTHON:-$(command -v python || command -v python3)}
SCALE=${SCALE:-1}
EVAL_TASKS=${EVAL_TASKS:-}
LIMIT=${LIMIT_S:-480}
EPISODES=${EPISODES:-}  # sft.episodes and env.train_tasks (default: the suites')
if ! "$PY" -c "import steprl.trainer, pydantic, gymnasium" 2>/dev/null; then
  OUT="$OUT/install" bash scripts/device_check.sh --install-only || exit 2
fi
"$PY" - "$OUT/suites" "$SCALE" "$EVAL_TASKS" "$EPISODES" <<'EOF'
import sys, yaml
out, scale, eval_tasks, episodes = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
def n(x):
    return max(1, int(round(x * scale)))
probes = {
    # the shop: 4-layer 256-wide model (~3.4M parameters), 2000 SFT steps (the suite: 2-layer 128, 150 steps)
    "webshop": dict(sft=2000, its=30, extra=["tiny_model.hidden=256", "tiny_model.layers=4"]),
    # the apps world: same model, 1500 SFT steps (300 gave 2% greedy); 10 iterations to fit the device time
    "apps": dict(sft=1500, its=10, extra=["tiny_model.hidden=256", "tiny_model.layers=4", "eval.tasks=50"]),
}
for name, p in probes.items():
    suite = yaml.safe_load(open(f"benchmarks/suites/{name}.yaml"))
    suite["name"] = f"probe_{name}"
    suite["seeds"] = [0]
    suite["sft_plateau"] = None
    suite["methods"] = {k: v for k, v in suite["methods"].items() if k in ("gigpo", "grpo")}
    suite["budget"]["iterations"] = n(p["its"])
    over = [o for o in suite["overrides"] if not o.startswith(("sft.steps=", "eval.every="))]
    over += [f"sft.steps={n(p['sft'])}", "eval.every=5", "agent.dtype=float32", "trainer.dtype=float32", *p["extra"]]
    if episodes:
        over = [o for o in over if not o.startswith(("sft.episodes=", "env.train_tasks="))]
        over += [f"sft.episodes={episodes}", f"env.train_tasks={episodes}"]
    if eval_tasks:
        over += [f"eval.tasks={eval_tasks}", "eval.envs=2"]
        suite["eval"]["episodes"] = int(eval_tasks)
    elif name == "apps":
        suite["eval"]["episodes"] = 50
    suite["overrides"] = over
    yaml.safe_dump(suite, open(f"{out}/{name}.yaml", "w"), sort_keys=False)
    print(f"{name}: sft.steps={n(p['sft'])} iterations={n(p['its'])}")
EOF
for s in webshop apps; do
  OMP_NUM_THREADS=3 timeout "$LIMIT" "$PY" -m steprl bench "$OUT/suites/$s.yaml" --jobs 2 --threads 3 \
    --out "$OUT/runs" --results "$OUT/results" > "$OUT/$s.log" 2>&1 &
done
wait
for s in webshop apps; do
  echo "== $s"; tail -8 "$OUT/$s.log"
  for f in "$OUT"/runs/probe_$s/seed0/*/log.txt; do
    echo "-- $f"; grep -E "SFT|eval|Error|error" "$f" | tail -12
  done
done
cat "$OUT"/results/*.md 2>/dev/null
find "$OUT" \( -name "*.safetensors" -o -name "*.pt" -o -name "*.bin" \) -delete  # figures only come back
