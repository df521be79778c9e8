#!/usr/bin/env bash
# h200_speed.sh: every figure of issue 12's speed table in one call on an
# NVIDIA H200, mom's and the CUDA stack's side by side, within 8 minutes.
#
#   OUT=/path/to/results MOM=/path/to/mom MOM_DEPS=/path/to/.deps \
#   VK_LOADER_DIR=/path/to/vulkan-loader bash cmd/mom/testdata/h200_speed.sh
#
#   MOM            the built mom binary (default: bin/mom beside this checkout)
#   MOM_DEPS       the folder holding dawn/libwebgpu_wrapper.so and
#                  wgpu/libwgpu_native-release.so (mom's .deps layout)
#   VK_LOADER_DIR  a folder with libvulkan.so.1, put first on LD_LIBRARY_PATH
#                  (optional: the system's loader otherwise)
#   OUT            where everything is written (default: ./h200-out)
#   PYTHON         the Python with PyTorch (default: python3)
#   BUDGET         seconds for the whole run (default 470: 8 minutes, less a margin)
#   SMOKE=1        the same steps at tiny sizes, to check the script on lavapipe
#
# It writes, under $OUT: devices-*.txt, kernels-{dawn,wgpu}.txt (`mom bench
# kernels --size large`: the GEMM shapes of the table, in float32 and with
# float16 inputs (*_f16, where the runtime offers shader-f16), the grouped
# GEMM, the scan, conv, norms, losses, AdamW), transfer-{dawn,wgpu}.txt (256 MiB each
# way through every transfer path offered), step-94m-{dawn,wgpu}.txt (`mom
# bench step`, 94m, three modalities, 8x512, dense vs MoM, with GPU
# memory, and a per-kernel profile of a step on Dawn), step-94m-wgpu-f16.txt (the same in mixed precision, --precision
# f16, on wgpu-native: Dawn refuses shader-f16 on NVIDIA), step-1.4b-dawn.txt with nvidia-smi samples (the 1.4b MoM
# preset's real peak and setup time against its dry-run accounting in
# memory-1.4b-dryrun.txt), cublas.json and cublas.txt (cuBLAS SGEMM with
# TF32 off at the same shapes, copies, mamba_ssm's scan where installed),
# and summary.txt (every step's exit status and time). A step that fails or
# runs out of its time is recorded and the run goes on.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
OUT=${OUT:-$PWD/h200-out}
MOM=${MOM:-$root/bin/mom}
PYTHON=${PYTHON:-python3}
BUDGET=${BUDGET:-470}
mkdir -p "$OUT"
if [ -n "${VK_LOADER_DIR:-}" ]; then
	export LD_LIBRARY_PATH="$VK_LOADER_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
if [ -n "${MOM_DEPS:-}" ]; then
	export MOM_DEPS
fi
unset MOM_WEBGPU_LIB # it would override --runtime
start=$(date +%s)
summary="$OUT/summary.txt"
: >"$summary"
note() { echo "$*" | tee -a "$summary"; }
note "h200_speed.sh: $(date -u +%FT%TZ), mom $MOM ($(sha256sum "$MOM" 2>/dev/null | cut -c1-12)), budget ${BUDGET}s"

# Sizes: the H200's, or tiny ones for a smoke test on lavapipe.
size=large kfilter= mib=256 p94=94m b94=8 l94=512 s94=5 r94=3 pbig=1.4b bbig=4 lbig=1024
if [ "${SMOKE:-}" = 1 ]; then
	size=small kfilter='^(fill|gemm_nn|scan_fwd)' mib=16 p94=tiny b94=2 l94=64 s94=1 r94=1 pbig=small bbig=2 lbig=64
	note "SMOKE=1: tiny sizes"
fi

# step NAME SECONDS CMD...: runs CMD with its output in $OUT/NAME.txt, for at
# most SECONDS and never past the budget (less a reserve for what follows).
step() {
	local name=$1 secs=$2
	shift 2
	local now left t0 rc
	now=$(date +%s)
	left=$((BUDGET - (now - start)))
	if [ "$left" -le 5 ]; then
		note "$name: skipped (budget spent)"
		return
	fi
	[ "$secs" -gt "$left" ] && secs=$left
	t0=$(date +%s)
	timeout --kill-after=5 "$secs" "$@" >"$OUT/$name.txt" 2>&1
	rc=$?
	note "$name: exit $rc after $(($(date +%s) - t0))s (limit ${secs}s)"
}

nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1 || true
step devices-dawn 30 "$MOM" devices --runtime dawn
step devices-wgpu 30 "$MOM" devices --runtime wgpu

# The CUDA anchors first: cheap, and the table needs them.
step cublas 60 "$PYTHON" "$here/h200_cublas.py" "$OUT"

step kernels-dawn 110 "$MOM" bench kernels --size "$size" --filter "$kfilter" --runtime dawn
step transfer-dawn 25 "$MOM" bench transfer --mib "$mib" --reps 3 --runtime dawn
step transfer-wgpu 25 "$MOM" bench transfer --mib "$mib" --reps 3 --runtime wgpu
# With a per-kernel profile of one more step (GPU timestamps, each dispatch in a pass of its own).
step step-94m-dawn 60 "$MOM" bench step --preset "$p94" --setting three --batch "$b94" --seq "$l94" --steps "$s94" --rounds "$r94" --profile 30 --runtime dawn

# The 1.4b MoM preset: what mom's accounting says (no GPU needed), then the
# real thing with nvidia-smi sampling the device memory every 0.5 s.
step memory-1.4b-dryrun 20 "$MOM" train --preset "$pbig" --setting three --split all --batch "$bbig" --seq "$lbig" --dry-run h200 --out "$OUT/dryrun-unused"
smi_pid=
if command -v nvidia-smi >/dev/null; then
	nvidia-smi --query-gpu=timestamp,memory.used --format=csv -lms 500 >"$OUT/nvsmi-1.4b.csv" 2>&1 &
	smi_pid=$!
fi
step step-1.4b-dawn 100 "$MOM" bench step --preset "$pbig" --setting three --batch "$bbig" --seq "$lbig" --steps 2 --rounds 1 --runtime dawn
if [ -n "$smi_pid" ]; then
	kill "$smi_pid" 2>/dev/null
	wait "$smi_pid" 2>/dev/null
	peak=$(awk -F', ' 'NR > 1 { gsub(/ MiB/, "", $2); if ($2 + 0 > m) m = $2 + 0 } END { print m + 0 }' "$OUT/nvsmi-1.4b.csv")
	note "nvidia-smi peak during step-1.4b-dawn: ${peak} MiB"
fi

step step-94m-wgpu 50 "$MOM" bench step --preset "$p94" --setting three --batch "$b94" --seq "$l94" --steps "$s94" --rounds "$r94" --runtime wgpu
# Mixed precision: float16 copies into the GEMMs and the conv (wgpu-native
# offers shader-f16 on NVIDIA, Dawn does not).
step step-94m-wgpu-f16 50 "$MOM" bench step --preset "$p94" --setting three --batch "$b94" --seq "$l94" --steps "$s94" --rounds "$r94" --precision f16 --runtime wgpu
# Last, with what is left: every kernel on wgpu-native, the float16 GEMMs
# (*_f16) included (Dawn refuses shader-f16 on NVIDIA: its f16 rows say so).
step kernels-wgpu 150 "$MOM" bench kernels --size "$size" --filter "$kfilter" --runtime wgpu

note "total: $(($(date +%s) - start))s"
