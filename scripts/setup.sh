#!/usr/bin/env bash
# Set up temflow on a fresh Debian/Ubuntu machine: system packages, a virtual
# environment (default .venv in the checkout; override with TEMFLOW_VENV), torch
# (CPU build where no CUDA GPU is present), and the project with asap3 compiled
# against OpenKIM. Idempotent: a second run with unchanged inputs installs nothing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
venv=${TEMFLOW_VENV:-$here/.venv}
extras=${TEMFLOW_EXTRAS:-dev,io,slurm}
stamp="$venv/.temflow-setup"

log() { printf '[setup] %s\n' "$*" >&2; }

# --- Debian packages: OpenKIM API and the KIM models (MoS2 Stillinger-Weber) ---------
need_apt=()
for pkg in libkim-api-dev openkim-models pkg-config; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { log "need root or sudo to install: ${need_apt[*]}"; exit 1; }
    sudo="sudo"
  fi
  log "installing Debian packages: ${need_apt[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# --- torch flavour ------------------------------------------------------------------------
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  torch_req=${TEMFLOW_TORCH:-torch}          # default PyPI build ships CUDA
else
  torch_req=${TEMFLOW_TORCH:-torch==2.13.0}  # CPU build; plain 'torch' would pull CUDA
fi

want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)-$torch_req-$extras
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/snakemake" ]; then
  log "environment $venv is up to date; nothing to install"
  exit 0
fi

[ -x "$venv/bin/python" ] || { log "creating virtual environment $venv"; python3 -m venv "$venv"; }
pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check)
log "installing $torch_req"
"${pip[@]}" "$torch_req"
log "installing temflow[$extras] (asap3 compiles against OpenKIM; about 2 minutes)"
"${pip[@]}" -e ".[$extras]"

"$venv/bin/python" - <<'PY'
import sys
import asap3
from temflow.md.dynamics import check_kim_model
if not asap3.OpenKIMsupported:
    sys.exit("[setup] asap3 was built without OpenKIM support: is pkg-config finding libkim-api?")
check_kim_model("SW_MX2_WenShirodkarPlechac_2017_MoS__MO_201919462778_001")
print("[setup] asap3", asap3.__version__, "with OpenKIM; MoS2 KIM model found", file=sys.stderr)
PY
echo "$want" > "$stamp"
log "done: activate with 'source $venv/bin/activate'"
