#!/usr/bin/env python3
"""The CUDA anchors of mom's speed table, measured in the same call as mom's
own figures (cmd/mom/testdata/h200_speed.sh runs this): cuBLAS SGEMM with
TF32 off at the GEMM shapes of `mom bench kernels --size large`, a device
copy, pinned host<->device copies of 256 MiB, and mamba_ssm's selective scan
where mamba_ssm is installed.

Usage: h200_cublas.py OUT_DIR   (writes cublas.json and prints a table)

Timing: CUDA events around each op, after warm-up runs; the median of the
timed runs counts. No network is needed.
"""
import json
import os
import statistics
import sys
import time

import torch


def timed(fn, warmup=5, reps=20):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))  # ms
    return statistics.median(times)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    if not torch.cuda.is_available():
        print("no CUDA device", file=sys.stderr)
        return 1
    # fp32 GEMMs as SGEMM: TF32 off everywhere.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    dev = torch.device("cuda")
    res = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
           "cuda": torch.version.cuda, "tf32": False, "gemm": [], "other": []}
    g = torch.Generator(device=dev).manual_seed(1)

    def rnd(*shape):
        return torch.rand(*shape, device=dev, generator=g) * 2 - 1

    # The shapes of mom's gemm cases (names as `mom bench kernels` prints
    # them): NT Y = X·Wᵀ, NN dX = dY·W, TN dW = dYᵀ·X.
    cube, rows, n, k = 4096, 8192, 3072, 768
    X, W, Y = rnd(cube, cube), rnd(cube, cube), torch.empty(cube, cube, device=dev)
    x, w, dy = rnd(rows, k), rnd(n, k), rnd(rows, n)
    y, dx, dw = torch.empty(rows, n, device=dev), torch.empty(rows, k, device=dev), torch.empty(n, k, device=dev)
    cases = [
        (f"gemm_nt/m={cube},n={cube},k={cube}", 2 * cube ** 3, lambda: torch.matmul(X, W.t(), out=Y)),
        (f"gemm_nt/m={rows},n={n},k={k}", 2 * rows * n * k, lambda: torch.matmul(x, w.t(), out=y)),
        (f"gemm_nn/rows={rows},n={n},k={k}", 2 * rows * n * k, lambda: torch.matmul(dy, w, out=dx)),
        (f"gemm_tn/rows={rows},n={n},k={k}", 2 * rows * n * k, lambda: torch.matmul(dy.t(), x, out=dw)),
    ]
    for name, flops, fn in cases:
        ms = timed(fn)
        res["gemm"].append({"name": name, "ms": ms, "tflops": flops / ms / 1e9})

    # A device copy of 1 GiB (read + write counted).
    a, b = torch.empty(1 << 28, device=dev), torch.empty(1 << 28, device=dev)
    ms = timed(lambda: b.copy_(a), warmup=3, reps=10)
    res["other"].append({"name": "device copy 1 GiB", "ms": ms, "GB/s": 2 * (1 << 30) / ms / 1e6})
    del a, b

    # Pinned host <-> device, 256 MiB each way.
    hp = torch.empty(1 << 26, dtype=torch.float32, pin_memory=True)
    dp = torch.empty(1 << 26, device=dev)
    ms = timed(lambda: dp.copy_(hp, non_blocking=True), warmup=2, reps=8)
    res["other"].append({"name": "pinned upload 256 MiB", "ms": ms, "GB/s": (1 << 28) / ms / 1e6})
    ms = timed(lambda: hp.copy_(dp, non_blocking=True), warmup=2, reps=8)
    res["other"].append({"name": "pinned download 256 MiB", "ms": ms, "GB/s": (1 << 28) / ms / 1e6})
    del hp, dp

    # mamba_ssm's CUDA selective scan at mom's scan size, where installed.
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
        B, L, ED, N = 8, 2048, 1536, 16
        u = rnd(B, ED, L).requires_grad_()
        delta = (rnd(B, ED, L) * 0.5).requires_grad_()
        A = (-torch.rand(ED, N, device=dev)).requires_grad_()
        Bm, Cm = rnd(B, N, L).requires_grad_(), rnd(B, N, L).requires_grad_()
        D = rnd(ED).requires_grad_()
        z = rnd(B, ED, L).requires_grad_()
        bias = rnd(ED).requires_grad_()

        def fwd():
            return selective_scan_fn(u, delta, A, Bm, Cm, D, z=z, delta_bias=bias, delta_softplus=True)
        ms_f = timed(fwd)
        outp = fwd()
        gy = torch.ones_like(outp)
        ms_b = timed(lambda: torch.autograd.grad(fwd(), [u, delta, A, Bm, Cm, D, z], gy)) - ms_f
        res["other"].append({"name": f"mamba_ssm selective scan b{B}_l{L}_ed{ED}_n{N} fwd", "ms": ms_f})
        res["other"].append({"name": f"mamba_ssm selective scan b{B}_l{L}_ed{ED}_n{N} bwd (fwd+bwd minus fwd)", "ms": ms_b})
    except Exception as e:  # not installed, or no kernel for this GPU
        res["other"].append({"name": "mamba_ssm selective scan", "skipped": f"{type(e).__name__}: {e}"})

    with open(os.path.join(out, "cublas.json"), "w") as f:
        json.dump(res, f, indent=2)
    print(f"{res['device']}, torch {res['torch']}, CUDA {res['cuda']}, TF32 off")
    for r in res["gemm"]:
        print(f"  cuBLAS SGEMM {r['name']:<40} {r['ms']:8.3f} ms  {r['tflops']:6.1f} TFLOP/s")
    for r in res["other"]:
        if "skipped" in r:
            print(f"  {r['name']}: skipped ({r['skipped']})")
        elif "GB/s" in r:
            print(f"  {r['name']:<53} {r['ms']:8.3f} ms  {r['GB/s']:7.1f} GB/s")
        else:
            print(f"  {r['name']:<53} {r['ms']:8.3f} ms")
    return 0


if __name__ == "__main__":
    t0 = time.time()
    rc = main()
    print(f"  ({time.time() - t0:.1f} s)")
    sys.exit(rc)
