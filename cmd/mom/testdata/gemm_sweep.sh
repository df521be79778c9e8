#!/usr/bin/env bash
# gemm_sweep.sh: the GEMM benchmarks (`mom bench kernels`) once per GEMM tile
# (MOM_GEMM_TILE, see nn.GemmTileForms) and runtime, one output line per
# tile per kernel, within a time budget: for picking the default tile on a
# GPU in one run.
#
#   RT="dawn wgpu" MOM=/path/to/mom bash cmd/mom/testdata/gemm_sweep.sh
#
#   RT       runtimes to sweep, space-separated (default: dawn)
#   TILES    tiles to sweep, space-separated (default: the list below, sized
#            for 48 KiB of workgroup memory, the H200's)
#   MOM      the built mom binary (default: bin/mom beside this checkout)
#   MOM_DEPS the folder holding the WebGPU libraries (mom's .deps layout)
#   FILTER   the cases (--filter; default: the float32 plain and grouped
#            GEMMs; add _f16 cases with e.g. FILTER='^(gemm|grouped)_')
#   SIZE     --size (default: large)
#   REPS     --reps (default: 10)
#   BUDGET   seconds for the whole sweep (default: 420); a tile that would
#            start with less than 10 s left is skipped and says so
#   OUT      also append every line to this file (optional)
#   SMOKE=1  small sizes and two tiles that fit lavapipe, to check the script
#
# Output lines: RUNTIME TILE KERNEL MS/RUN GFLOP/S GB/S %ROOF TIMED-BY, or
# RUNTIME TILE KERNEL error: ... (a tile that does not fit the device says
# so there), then one line per runtime and tile with its exit status.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
MOM=${MOM:-$root/bin/mom}
RT=${RT:-dawn}
FILTER=${FILTER:-'^(gemm|grouped)_(nt|nn|tn)/'}
SIZE=${SIZE:-large}
REPS=${REPS:-10}
BUDGET=${BUDGET:-420}
OUT=${OUT:-}
# Today's defaults (128,128,8 Dawn, 128,128,16 wgpu-native) first, then the
# variants: db (double-buffered, one barrier per step), p (register prefetch
# up to 4 vec4 per operand: BK 32), v4 (no prefetch), bandR (workgroups in
# bands of R tile rows, column by column, for L2 reuse), smaller tiles.
TILES=${TILES:-"128,128,8 128,128,16 128,128,8,db 128,128,16,db 128,128,32,p 128,128,32,v4 \
128,128,8,band8 128,128,8,db,band8 128,128,16,db,band8 128,128,16,db,band16 \
64,128,16,db 128,64,16,db 64,64,16,db 64,64,8,db"}
if [ "${SMOKE:-}" = 1 ]; then
	SIZE=small TILES="64,64,16 64,64,16,db,band2"
fi
unset MOM_WEBGPU_LIB # it would override --runtime
if [ -n "${MOM_DEPS:-}" ]; then
	export MOM_DEPS
fi
start=$(date +%s)

say() {
	echo "$*"
	if [ -n "$OUT" ]; then
		echo "$*" >>"$OUT"
	fi
}

say "gemm_sweep.sh: $(date -u +%FT%TZ), mom $MOM, runtimes $RT, size $SIZE, filter $FILTER, budget ${BUDGET}s"
for rt in $RT; do
	for tile in $TILES; do
		left=$((BUDGET - ($(date +%s) - start)))
		if [ "$left" -lt 10 ]; then
			say "$rt $tile skipped (budget spent)"
			continue
		fi
		t0=$(date +%s)
		# The kernel table's rows follow its header line ("kernel  ms/run ...").
		res=$(MOM_GEMM_TILE=$tile timeout --kill-after=5 "$left" "$MOM" bench kernels \
			--size "$SIZE" --filter "$FILTER" --reps "$REPS" --runtime "$rt" 2>&1)
		rc=$?
		rows=$(printf '%s\n' "$res" | awk -v pre="$rt $tile" 'body && NF { print pre, $0 } /^kernel +ms\/run/ { body = 1 }')
		if [ -n "$rows" ]; then
			say "$rows"
		fi
		if [ "$rc" -ne 0 ] || [ -z "$rows" ]; then
			say "$rt $tile: exit $rc: $(printf '%s\n' "$res" | tail -n 3 | tr '\n' ' ')"
		fi
		say "$rt $tile: done in $(($(date +%s) - t0))s (exit $rc)"
	done
done
say "total: $(($(date +%s) - start))s"
