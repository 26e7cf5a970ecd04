#!/usr/bin/env bash
# Probe: how far does SFT alone take a tiny from-scratch model on tools/apps-v0 (the apps suite's settings)?
# Three runs side by side (model size × SFT steps), each evaluated greedily on 100 test tasks at iteration 0.
#   OUT=/tmp/probe bash benchmarks/probes/apps_sft.sh            # on a GPU machine after scripts/device_check.sh's installs
#   STEPS_SCALE=0.01 EVAL_TASKS=2 bash benchmarks/probes/apps_sft.sh   # a dry run on CPU
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/apps_probe}
mkdir -p "$OUT"
PY=${PYTHON:-$(command -v python || command -v python3)}
SCALE=${STEPS_SCALE:-1}
EVAL_TASKS=${EVAL_TASKS:-100}
LIMIT=${LIMIT_S:-480}
steps() { "$PY" -c "print(max(1, int($1 * $SCALE)))"; }
COMMON=(env.id=tools/apps-v0 "env.kwargs={max_turns: 20}" env.train_tasks=500 env.max_turns=20
        tiny_model.corpus_tasks=32 tiny_model.vocab=2048 agent.response_format=tool_calls agent.tool_schemas=none
        agent.max_new_tokens=160 agent.history_k=4 agent.max_prompt_tokens=8192 run.rollout_envs=48
        trainer.micro_batch_tokens=65536 trainer.minibatch_size=32 sft.batch_size=16 sft.episodes=300
        run.iterations=0 "eval.tasks=$EVAL_TASKS" eval.envs=50 run.progress=false run.overwrite=true)
run() {  # name, extra overrides...
  local name=$1; shift
  OMP_NUM_THREADS=4 timeout "$LIMIT" "$PY" -m steprl train configs/quickstart.yaml "${COMMON[@]}" "run.dir=$OUT/$name" "$@" \
    > "$OUT/$name.log" 2>&1
  echo "$name exit $?" >> "$OUT/$name.log"
}
run small_300 "sft.steps=$(steps 300)" &
run small_2000 "sft.steps=$(steps 2000)" &
run big_2000 "sft.steps=$(steps 2000)" tiny_model.hidden=256 tiny_model.layers=4 &
wait
for f in "$OUT"/*.log; do echo "== $f"; grep -E "SFT:|eval @|exit|Error|error" "$f" | tail -5; done
find "$OUT" -name "*.safetensors" -delete  # figures only come back
