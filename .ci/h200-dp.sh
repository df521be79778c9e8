#!/usr/bin/env bash
# Data-parallel measurements on a machine with 2 NVIDIA H200 GPUs (issue 13).
#
# Here, on a machine with apt and a network (once):
#
#   make build                      # bin/mom
#   bash .ci/h200-dp.sh fetch       # Open MPI's Debian packages -> .deps/openmpi-debs/ (6 MB)
#
# Carry bin/, .deps/wgpu/ and .deps/openmpi-debs/ (about 33 MB; .deps/dawn/ too for Dawn
# runs) to the GPU machine, which has no network and runs as root. There:
#
#   bash .ci/h200-dp.sh check       # unpack Open MPI, list the GPUs, 2 ranks of the tiny preset
#   bash .ci/h200-dp.sh 94m         # tokens/s: 94m on 1 GPU at 8x512 vs 2 GPUs at 16x512 (target >= 1.8x)
#   bash .ci/h200-dp.sh 443m        # 443m on 2 GPUs (4x1024 each), communication per step and its overlap
#   bash .ci/h200-dp.sh all         # the three
#
# Each phase fits the device tool's 10 minutes per command. Results go to
# runs/h200-dp/<phase>/ (run folders, logs) and are summarised on stdout and in
# runs/h200-dp/summary.txt. Settings: RT (WebGPU runtime, default wgpu: Dawn's C API
# shows one adapter per kind of GPU, so its second rank would find no GPU of its
# own), STEPS (default 40), BUCKET_MB (default 25), LANES (MPI threads per rank of the
# all-to-all reduction, default mom's: one per 2 cores of a rank's share, at most 4; on
# one host the shared-memory reduction is used and sums on the rank's share of the
# cores; MOM_MPI_REDUCE=alltoall forces the other), OUT (default runs/h200-dp), EXTRA
# (more train flags for every run, e.g. EXTRA=--share-adapter to try the script on one
# GPU or on lavapipe).
#
# Open MPI is unpacked with `dpkg -x` (or `ar` + `tar` where dpkg is missing) into
# .deps/openmpi/ and used from there: OPAL_PREFIX relocates Open MPI (its plugins
# under lib/x86_64-linux-gnu/openmpi/lib/openmpi3), PMIX_MCA_mca_base_component_path
# points PMIx at its own plugins, PATH and LD_LIBRARY_PATH find mpirun.openmpi and
# the libraries, MOM_MPI_LIB names the libmpi mom loads. As root, mpirun needs
# --allow-run-as-root. With only a loopback interface, mpirun works while `lo` is up
# (tested here in a network namespace with lo alone, and with the system's Open MPI
# hidden).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
debs="$root/.deps/openmpi-debs"
prefix="$root/.deps/openmpi"
RT=${RT:-wgpu}
STEPS=${STEPS:-40}
BUCKET_MB=${BUCKET_MB:-25}
OUT=${OUT:-$root/runs/h200-dp}
mom="$root/bin/mom"
read -r -a extra <<<"${EXTRA:-}"
dp=(--bucket-mb "$BUCKET_MB")
[ -n "${LANES:-}" ] && dp+=(--comm-lanes "$LANES")

# Open MPI 4.1.4 of Debian 12 and what its runtime and plugins load.
PKGS=(openmpi-bin openmpi-common libopenmpi3 libpmix2 libevent-core-2.1-7 libevent-pthreads-2.1-7
  libhwloc15 libhwloc-plugins libnuma1 libmunge2 libfabric1 libucx0 libibverbs1 librdmacm1
  ibverbs-providers libpsm2-2 libpsm-infinipath1 libnl-3-200 libnl-route-3-200 libxnvctrl0
  libpciaccess0)

log() { printf '\n== %s\n' "$*"; }

fetch() {
  mkdir -p "$debs"
  (cd "$debs" && apt-get download "${PKGS[@]}")
  ls -la "$debs"
}

# openmpi unpacks the carried packages (once) and sets the environment.
openmpi() {
  if [ ! -e "$prefix/usr/bin/orterun" ]; then
    ls "$debs"/*.deb >/dev/null 2>&1 || { echo "no packages in $debs: run '$0 fetch' on a machine with apt" >&2; exit 1; }
    mkdir -p "$prefix"
    for d in "$debs"/*.deb; do
      if command -v dpkg >/dev/null; then
        dpkg -x "$d" "$prefix"
      else
        tmp=$(mktemp -d)
        (cd "$tmp" && ar x "$d" && tar -xf data.tar.* -C "$prefix")
        rm -rf "$tmp"
      fi
    done
  fi
  local lib="$prefix/usr/lib/x86_64-linux-gnu"
  export OPAL_PREFIX="$prefix/usr"
  export PMIX_MCA_mca_base_component_path="$lib/pmix2/lib/pmix"
  export PATH="$prefix/usr/bin:$PATH"
  export LD_LIBRARY_PATH="$lib:$lib/openmpi/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export MOM_MPI_LIB="$lib/libmpi.so.40"
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  export MOM_DEPS="$root/.deps"
}

# mpirun runs np ranks on this host: unbound (each rank keeps every core for
# the Go runtime and the driver), shared memory between them.
mpirun_() {
  local np=$1
  shift
  mpirun.openmpi --allow-run-as-root -np "$np" --bind-to none --map-by slot --mca btl self,vader "$@"
}

# means prints the mean of the step timings of a run's training records,
# leaving out the first two steps (pipelines compile, caches warm).
means() {
  awk -v keys="step_ms tokens_per_s comm_ms comm_overlap_ms comm_exposed_ms upload_ms" '
    /"split":"train"/ {
      if (!match($0, /"step":[0-9]+/)) next
      st = substr($0, RSTART + 7, RLENGTH - 7) + 0
      if (st <= 2) next
      nk = split(keys, K, " ")
      for (i = 1; i <= nk; i++) {
        k = K[i]
        if (match($0, "\"" k "\":[-0-9.eE+]+")) { s[k] += substr($0, RSTART + length(k) + 3, RLENGTH - length(k) - 3); c[k]++ }
      }
    }
    END {
      nk = split(keys, K, " ")
      for (i = 1; i <= nk; i++) { k = K[i]; if (c[k]) printf "  %-16s %10.2f  (mean of %d steps)\n", k, s[k] / c[k], c[k] }
      if (c["comm_ms"] && s["comm_ms"] > 0) printf "  overlap          %9.1f%%  of the communication ran during the backward\n", 100 * s["comm_overlap_ms"] / s["comm_ms"]
    }' "$1/metrics.jsonl"
}

# tps is the whole run's tokens/s from its summary line.
tps() { sed -n 's/.*, \([0-9]*\) tokens\/s (mean after the first step.*/\1/p' "$1" | tail -1; }

report() { tee -a "$OUT/summary.txt"; }

# drop removes a run's checkpoints (the 443m ones are 14 GB; the disk has 64 GiB),
# keeping its metrics, config and log.
drop() { rm -rf "$1/checkpoints"; }

check() {
  log "Open MPI and the GPUs"
  mpirun.openmpi --version | head -1
  command -v nvidia-smi >/dev/null && nvidia-smi -L && nvidia-smi topo -m || true
  "$mom" devices --runtime "$RT" | grep -E '^(runtime|\[)'
  log "2 ranks, tiny preset, one GPU each"
  rm -rf "$OUT/check"
  mpirun_ 2 "$mom" train --runtime "$RT" --preset tiny --steps 20 --eval-every 10 --out "$OUT/check/tiny-2gpu" "${extra[@]}" 2>&1 | tee "$OUT/check.log"
}

run94m() {
  local dir="$OUT/94m"
  rm -rf "$dir" && mkdir -p "$dir"
  local common=(--runtime "$RT" --preset 94m --seq 512 --steps "$STEPS" --eval-every 0 --ckpt-every 0 --keep 1 "${extra[@]}")
  log "94m, 1 GPU, 8x512 per step"
  "$mom" train "${common[@]}" --batch 8 --out "$dir/1gpu" 2>&1 | tee "$dir/1gpu.log"
  log "94m, 2 GPUs, 16x512 per step (8x512 per GPU)"
  mpirun_ 2 "$mom" train "${common[@]}" --batch 16 "${dp[@]}" --out "$dir/2gpu" 2>&1 | tee "$dir/2gpu.log"
  drop "$dir/1gpu"
  drop "$dir/2gpu"
  local one two
  one=$(tps "$dir/1gpu.log")
  two=$(tps "$dir/2gpu.log")
  {
    echo "94m ($RT, $STEPS steps, buckets of $BUCKET_MB MiB): 1 GPU 8x512 $one tokens/s; 2 GPUs 16x512 $two tokens/s;" \
      "scaling $(awk -v a="$one" -v b="$two" 'BEGIN { if (a > 0) printf "%.2fx", b / a; else print "?" }') (target 1.8x)"
    echo " 1 GPU:"
    means "$dir/1gpu"
    echo " 2 GPUs:"
    means "$dir/2gpu"
  } | report
}

run443m() {
  local dir="$OUT/443m"
  rm -rf "$dir" && mkdir -p "$dir"
  local steps=$((STEPS < 20 ? STEPS : 20))
  local common=(--runtime "$RT" --preset 443m --seq 1024 --steps "$steps" --eval-every 0 --ckpt-every 0 --keep 1 "${extra[@]}")
  log "443m, 2 GPUs, 8x1024 per step (4x1024 per GPU)"
  mpirun_ 2 "$mom" train "${common[@]}" --batch 8 "${dp[@]}" --out "$dir/2gpu" 2>&1 | tee "$dir/2gpu.log"
  drop "$dir/2gpu"
  log "443m, 1 GPU, 4x1024 per step"
  "$mom" train "${common[@]}" --batch 4 --out "$dir/1gpu" 2>&1 | tee "$dir/1gpu.log"
  drop "$dir/1gpu"
  {
    echo "443m ($RT, $steps steps, buckets of $BUCKET_MB MiB): 2 GPUs 8x1024 $(tps "$dir/2gpu.log") tokens/s; 1 GPU 4x1024 $(tps "$dir/1gpu.log") tokens/s"
    echo " 2 GPUs:"
    means "$dir/2gpu"
    echo " 1 GPU:"
    means "$dir/1gpu"
  } | report
}

phase=${1:-all}
case "$phase" in
fetch) fetch ;;
check | 94m | 443m | all)
  [ -x "$mom" ] || { echo "no $mom: run 'make build' (and carry bin/)" >&2; exit 1; }
  openmpi
  mkdir -p "$OUT"
  case "$phase" in
  check) check ;;
  94m) run94m ;;
  443m) run443m ;;
  all) check && run94m && run443m ;;
  esac
  ;;
*)
  echo "usage: $0 fetch | check | 94m | 443m | all" >&2
  exit 2
  ;;
esac
