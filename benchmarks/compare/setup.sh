#!/usr/bin/env bash
# Create the peers' virtual environments for benchmarks/compare/run.py under benchmarks/compare/.venvs/
# (gitignored), one per peer, each with its own `status.json`: {"ok": true, ...} or {"ok": false, "error": ...}.
# torch is constrained to the repo's CPU wheel (constraints/cpu.txt) wherever the peer allows it.
#   bash benchmarks/compare/setup.sh [keras] [ludwig] [sklearn] [torch] [nanogpt]     (default: all)
# Re-running skips an environment whose status is ok. Logs: benchmarks/compare/.venvs/NAME.log
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENVS="$HERE/.venvs"
PY="${PY:-python3}"
CONSTRAINTS="$ROOT/constraints/cpu.txt"
mkdir -p "$VENVS"

# An import that must work after the install (a constrained install can resolve yet not run: Ludwig 0.11.0 with
# the CPU torch wheel gets PyPI's CUDA torchvision, whose ops fail to load).
declare -A SMOKE=(
  [keras]="import os; os.environ['KERAS_BACKEND'] = 'torch'; import keras, tensorflow"
  [ludwig]="from ludwig.api import LudwigModel"
  [sklearn]="import sklearn, pandas"
  [torch]="import torch, sklearn, pandas"
)
declare -A PACKAGES=(
  [keras]="keras tensorflow-cpu torch pandas scikit-learn"
  [ludwig]="ludwig==0.11.0"
  [sklearn]="scikit-learn pandas"
  [torch]="torch pandas scikit-learn"
)

status() {  # NAME OK MESSAGE
  "$PY" -c 'import json,sys; ok=sys.argv[2]=="1"; json.dump({"ok": ok, ("note" if ok else "error"): sys.argv[3]}, open(sys.argv[1], "w"))' \
    "$VENVS/$1/status.json" "$2" "$3"
}

smoke() {  # NAME LOG: 0 when the environment imports its framework; the error's last line goes to the log
  "$VENVS/$1/bin/python" -c "${SMOKE[$1]}" >> "$2" 2>&1
}

last_error() {  # LOG
  grep -E '^(ERROR|[A-Za-z.]*Error)' "$1" | tail -n 1 || tail -n 1 "$1"
}

install() {  # NAME
  local name="$1" log="$VENVS/$1.log"
  if [ -f "$VENVS/$name/status.json" ] && grep -q '"ok": true' "$VENVS/$name/status.json"; then
    echo "$name: already installed"; return
  fi
  "$PY" -m venv "$VENVS/$name" > "$log" 2>&1
  echo "$name: pip install -c constraints/cpu.txt ${PACKAGES[$name]}"
  if "$VENVS/$name/bin/pip" install -c "$CONSTRAINTS" ${PACKAGES[$name]} >> "$log" 2>&1 && smoke "$name" "$log"; then
    status "$name" 1 "installed with -c constraints/cpu.txt"
  else
    local first; first="$(last_error "$log")"
    echo "$name: with the CPU torch wheel: $first; installing again, without constraints/cpu.txt, in a fresh venv"
    rm -rf "$VENVS/$name"
    "$PY" -m venv "$VENVS/$name" >> "$log" 2>&1
    if "$VENVS/$name/bin/pip" install ${PACKAGES[$name]} >> "$log" 2>&1 && smoke "$name" "$log"; then
      status "$name" 1 "installed without constraints/cpu.txt (with the CPU torch wheel: $first)"
    else
      status "$name" 0 "$(last_error "$log")"
    fi
  fi
  echo "$name: $(cat "$VENVS/$name/status.json")"
}

nanogpt() {  # nanoGPT is a GitHub repository (no PyPI package): its train.py runs from a clone
  mkdir -p "$VENVS/nanogpt"
  local err
  if err="$(cd "$VENVS" && timeout 120 git clone --depth 1 https://github.com/karpathy/nanoGPT nanogpt/src 2>&1)"; then
    status nanogpt 0 "cloned, but this benchmark has no nanoGPT worker; the plain PyTorch GPT (torch-gpt) stands in"
  else
    status nanogpt 0 "git clone https://github.com/karpathy/nanoGPT: $(echo "$err" | tail -n 1)"
  fi
  echo "nanogpt: $(cat "$VENVS/nanogpt/status.json")"
}

names=("$@")
[ ${#names[@]} -eq 0 ] && names=(sklearn torch keras ludwig nanogpt)
for name in "${names[@]}"; do
  if [ "$name" = nanogpt ]; then nanogpt; else install "$name"; fi
done
