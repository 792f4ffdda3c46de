#!/usr/bin/env bash
# GPU proof for the runner's inventory and admission on a real NVIDIA host
# (docs/hardware.md). Needs the adbot binary built beforehand for linux/amd64
# with cgo (the host has no Go toolchain and no internet):
#
#   CGO_CFLAGS=-Wno-deprecated-declarations go build -o .device/adbot .
#
# then, on the GPU host, from the repository root: scripts/gpu-proof.sh
# It prints every command before its output. It allocates 4 GiB on GPU 0
# with PyTorch, shows the runner judging GPU 0 busy, frees it, and shows it free.
set -u
ADBOT=${ADBOT:-.device/adbot}
OUT=${OUT:-/tmp}
step() { printf '\n$ %s\n' "$*"; "$@"; }

step "$ADBOT" version
step nvidia-smi --query-gpu=index,name,uuid,memory.used,memory.total,utilization.gpu --format=csv
step python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "devices", torch.cuda.device_count())'

echo; echo "### 1. idle: the runner's inventory and admission decision"
step "$ADBOT" runner --inventory

echo; echo "### 2. a Python process holds 4 GiB on GPU 0"
python3 - <<'PY' > "$OUT/holder.log" 2>&1 &
import time, torch
x = torch.ones(4 << 30, dtype=torch.uint8, device="cuda:0")
torch.cuda.synchronize()
print("holding", x.numel() >> 30, "GiB on cuda:0", flush=True)
time.sleep(600)
PY
HOLDER=$!
for _ in $(seq 1 120); do grep -q holding "$OUT/holder.log" && break; sleep 0.5; done
echo "holder pid $HOLDER: $(cat "$OUT/holder.log")"
step nvidia-smi --query-compute-apps=pid,used_memory --format=csv
step "$ADBOT" runner --inventory
echo; echo "### the same with ADBOT_GPUS=0 (only GPU 0 may be used: nothing admitted)"
step env ADBOT_GPUS=0 "$ADBOT" runner --inventory

echo; echo "### 3. the process ends: GPU 0 is free again"
step kill "$HOLDER"
wait "$HOLDER" 2>/dev/null
# NVML's utilization is averaged over its last sample period; wait until the
# runner sees the GPU free (at most 20 s), showing each look.
for i in $(seq 1 20); do
  if "$ADBOT" runner --inventory > "$OUT/inv.json" && ! grep -q '"busy"' "$OUT/inv.json"; then break; fi
  echo "look $i: still busy: $(grep -A3 '"busy"' "$OUT/inv.json" | tr -s ' \n' ' ')"
  sleep 1
done
step "$ADBOT" runner --inventory
step env ADBOT_GPUS=none "$ADBOT" runner --inventory
