package ref

import "math"

// Selective scan (Mamba's S6 recurrence) with fused softplus, D skip and
// SiLU(z) gate. Symbols, per batch b, channel e in [0, ed), state i in [0, n):
//
//	dt[t,e]  = softplus(delta[t,e])          delta already holds dt_proj's bias
//	A[e,i]   = -exp(aLog[e,i])
//	h[t,e,i] = exp(dt[t,e]*A[e,i]) * h[t-1,e,i] + dt[t,e]*b[t,i]*u[t,e]   (h[-1] = 0)
//	y[t,e]   = (sum_i c[t,i]*h[t,e,i] + d[e]*u[t,e]) * silu(z[t,e])      (no gate when z is nil)
//
// Layouts: u, delta, z, y (batch, length, ed); aLog (ed, n); b, c (batch,
// length, n), shared by every channel; d (ed).

// scanSoftplus is log(1+exp(x)), computed in float64.
func scanSoftplus(x float64) float64 {
	if x > 20 {
		return x
	}
	return math.Log1p(math.Exp(x))
}

// scanSigmoid is 1/(1+exp(-x)), the derivative of softplus.
func scanSigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// SelectiveScan is the sequential recurrence: a plain loop over t, the truth
// every other scan is tested against.
func SelectiveScan[T Float](y, u, delta, aLog, b, c, d, z []T, batch, length, ed, n int) {
	h := make([]float64, n)
	for bi := 0; bi < batch; bi++ {
		for e := 0; e < ed; e++ {
			for i := range h {
				h[i] = 0
			}
			for t := 0; t < length; t++ {
				x := (bi*length+t)*ed + e // (b, t, e)
				bc := (bi*length + t) * n // (b, t, 0)
				dt := scanSoftplus(float64(delta[x]))
				uv := float64(u[x])
				out := float64(d[e]) * uv
				for i := 0; i < n; i++ {
					a := -math.Exp(float64(aLog[e*n+i]))
					h[i] = math.Exp(dt*a)*h[i] + dt*float64(b[bc+i])*uv
					out += float64(c[bc+i]) * h[i]
				}
				if z != nil {
					zv := float64(z[x])
					out *= zv * scanSigmoid(zv)
				}
				y[x] = T(out)
			}
		}
	}
}

// SelectiveScanFinal sets hf (batch, ed, n) to the state after the last
// step of SelectiveScan's recurrence (the scan's Final output), the state
// the recurrent step mode continues from.
func SelectiveScanFinal[T Float](hf, u, delta, aLog, b []T, batch, length, ed, n int) {
	for bi := 0; bi < batch; bi++ {
		for e := 0; e < ed; e++ {
			for i := 0; i < n; i++ {
				a := -math.Exp(float64(aLog[e*n+i]))
				h := 0.0
				for t := 0; t < length; t++ {
					x := (bi*length+t)*ed + e
					dt := scanSoftplus(float64(delta[x]))
					h = math.Exp(dt*a)*h + dt*float64(b[(bi*length+t)*n+i])*float64(u[x])
				}
				hf[(bi*ed+e)*n+i] = T(h)
			}
		}
	}
}

// SelectiveScanBackward is the gradient of SelectiveScan given dy. du,
// ddelta, db, dc and dz are written (=); daLog and dd accumulate (+=), as
// parameter gradients do. z and dz may be nil (no gate). The derivation is
// written out in shaders/scan.wgsl; in short, with a[t] = exp(dt[t]*A),
// g = dy*silu(z) and the state adjoint
//
//	dh[t] = g[t]*c[t] + a[t+1]*dh[t+1]                 (dh[length] = 0)
//	ddt[t] = sum_i dh[t]*(b[t]*u[t] + A*a[t]*h[t-1])
//	du[t]  = g[t]*d + sum_i dh[t]*dt[t]*b[t]
//	dA     = sum_t dh[t]*a[t]*dt[t]*h[t-1],  daLog = dA*A
//	db[t]  = sum_e dh[t]*dt[t]*u[t],  dc[t] = sum_e g[t]*h[t]
//	ddelta = ddt*sigmoid(delta)
func SelectiveScanBackward[T Float](du, ddelta, daLog, db, dc, dd, dz, dy, u, delta, aLog, b, c, d, z []T, batch, length, ed, n int) {
	dbAcc := make([]float64, batch*length*n)
	dcAcc := make([]float64, batch*length*n)
	h := make([]float64, (length+1)*n) // h[t+1] is the state after step t; h[0] = 0
	dh := make([]float64, n)
	for bi := 0; bi < batch; bi++ {
		for e := 0; e < ed; e++ {
			A := make([]float64, n)
			for i := range A {
				A[i] = -math.Exp(float64(aLog[e*n+i]))
			}
			// Forward again, keeping every state.
			for t := 0; t < length; t++ {
				x := (bi*length+t)*ed + e
				bc := (bi*length + t) * n
				dt := scanSoftplus(float64(delta[x]))
				for i := 0; i < n; i++ {
					h[(t+1)*n+i] = math.Exp(dt*A[i])*h[t*n+i] + dt*float64(b[bc+i])*float64(u[x])
				}
			}
			for i := range dh {
				dh[i] = 0
			}
			var dA = make([]float64, n)
			var dD float64
			for t := length - 1; t >= 0; t-- {
				x := (bi*length+t)*ed + e
				bc := (bi*length + t) * n
				dt := scanSoftplus(float64(delta[x]))
				uv := float64(u[x])
				gate, dgate := 1.0, 0.0
				if z != nil {
					zv := float64(z[x])
					s := scanSigmoid(zv)
					gate = zv * s
					dgate = s * (1 + zv*(1-s))
				}
				g := float64(dy[x]) * gate
				pre := float64(d[e]) * uv
				ddt, duv := 0.0, g*float64(d[e])
				for i := 0; i < n; i++ {
					a := math.Exp(dt * A[i])
					ht, hp := h[(t+1)*n+i], h[t*n+i]
					pre += float64(c[bc+i]) * ht
					// dh[i] holds a[t+1]*dh[t+1] from the step after; add this step's output.
					dh[i] += g * float64(c[bc+i])
					dcAcc[bc+i] += g * ht
					dbAcc[bc+i] += dh[i] * dt * uv
					ddt += dh[i] * (float64(b[bc+i])*uv + A[i]*a*hp)
					duv += dh[i] * dt * float64(b[bc+i])
					dA[i] += dh[i] * a * dt * hp
					dh[i] *= a // carry to step t-1
				}
				dD += g * uv
				du[x] = T(duv)
				ddelta[x] = T(ddt * scanSigmoid(float64(delta[x])))
				if z != nil {
					dz[x] = T(float64(dy[x]) * pre * dgate)
				}
			}
			for i := 0; i < n; i++ {
				daLog[e*n+i] += T(dA[i] * A[i])
			}
			dd[e] += T(dD)
		}
	}
	for i := range dbAcc {
		db[i] = T(dbAcc[i])
		dc[i] = T(dcAcc[i])
	}
}

// scanPair is one element of the associative scan: the affine map
// h -> a*h + b. compose(p, q) applies p first, then q:
// (a1, b1) o (a2, b2) = (a1*a2, a2*b1 + b2).
type scanPair struct{ a, b float64 }

func scanCompose(p, q scanPair) scanPair { return scanPair{p.a * q.a, q.a*p.b + q.b} }

// scanRowExclusive is the exclusive scan of xs under scanCompose, done the
// way a workgroup does it (Hillis-Steele: log2(len) rounds, each combining
// element j with element j-2^r), so that the order of the float operations
// mirrors the GPU's. Element 0 gets the identity (1, 0); the second result
// is the total.
func scanRowExclusive(xs []scanPair) ([]scanPair, scanPair) {
	cur := append([]scanPair(nil), xs...)
	for d := 1; d < len(cur); d *= 2 {
		next := append([]scanPair(nil), cur...)
		for j := d; j < len(cur); j++ {
			next[j] = scanCompose(cur[j-d], cur[j])
		}
		cur = next
	}
	out := make([]scanPair, len(xs))
	out[0] = scanPair{1, 0}
	copy(out[1:], cur[:len(cur)-1])
	return out, cur[len(cur)-1]
}

// ChunkedScan is SelectiveScan computed the way the GPU kernel does it: the
// sequence is cut into chunks of threads*items steps; within a chunk each of
// the threads composes its items into one affine map, the maps are combined
// across threads by an exclusive associative scan, and the running state is
// carried from chunk to chunk. The state at the start of every chunk is
// written to hs (batch, ed, nChunks, n), nChunks = ceil(length /
// (threads*items)); nothing else of h is kept.
func ChunkedScan[T Float](y, hs, u, delta, aLog, b, c, d, z []T, batch, length, ed, n, threads, items int) {
	chunk := threads * items
	nChunks := (length + chunk - 1) / chunk
	A := make([]float64, n)
	carry := make([]float64, n)
	yacc := make([]float64, chunk)
	seg := make([]scanPair, threads)
	for bi := 0; bi < batch; bi++ {
		for e := 0; e < ed; e++ {
			for i := range A {
				A[i] = -math.Exp(float64(aLog[e*n+i]))
				carry[i] = 0
			}
			for ch := 0; ch < nChunks; ch++ {
				t0 := ch * chunk
				for k := range yacc {
					yacc[k] = 0
				}
				// step returns (a, dt*b*u) of step t, identity past the end.
				step := func(t, i int) scanPair {
					if t >= length {
						return scanPair{1, 0}
					}
					x := (bi*length+t)*ed + e
					dt := scanSoftplus(float64(delta[x]))
					return scanPair{math.Exp(dt * A[i]), dt * float64(b[(bi*length+t)*n+i]) * float64(u[x])}
				}
				for i := 0; i < n; i++ {
					hs[((bi*ed+e)*nChunks+ch)*n+i] = T(carry[i])
					for p := 0; p < threads; p++ {
						acc := scanPair{1, 0}
						for k := 0; k < items; k++ {
							acc = scanCompose(acc, step(t0+p*items+k, i))
						}
						seg[p] = acc
					}
					excl, total := scanRowExclusive(seg)
					for p := 0; p < threads; p++ {
						hv := excl[p].a*carry[i] + excl[p].b
						for k := 0; k < items; k++ {
							t := t0 + p*items + k
							st := step(t, i)
							hv = st.a*hv + st.b
							if t < length {
								yacc[p*items+k] += float64(c[(bi*length+t)*n+i]) * hv
							}
						}
					}
					carry[i] = total.a*carry[i] + total.b
				}
				for k := 0; k < chunk && t0+k < length; k++ {
					x := (bi*length+t0+k)*ed + e
					out := yacc[k] + float64(d[e])*float64(u[x])
					if z != nil {
						zv := float64(z[x])
						out *= zv * scanSigmoid(zv)
					}
					y[x] = T(out)
				}
			}
		}
	}
}

// ChunkedScanBackward is SelectiveScanBackward computed the way the GPU
// kernel does it, from the chunk-start states hs that ChunkedScan wrote:
// chunks are walked in reverse; in each, the states are recomputed from the
// chunk's start state by the forward chunked scan, and the state adjoint is
// found by a reverse exclusive scan over the threads' composed maps, carried
// from chunk to chunk. Output semantics as SelectiveScanBackward.
func ChunkedScanBackward[T Float](du, ddelta, daLog, db, dc, dd, dz, dy, hs, u, delta, aLog, b, c, d, z []T, batch, length, ed, n, threads, items int) {
	chunk := threads * items
	nChunks := (length + chunk - 1) / chunk
	dbAcc := make([]float64, batch*length*n)
	dcAcc := make([]float64, batch*length*n)
	A := make([]float64, n)
	sCarry := make([]float64, n) // the adjoint flowing into the chunk's end from the chunk after
	dA := make([]float64, n)
	seg := make([]scanPair, threads)
	hprev := make([]float64, chunk)
	hcur := make([]float64, chunk)
	var dD float64
	duAcc := make([]float64, chunk)
	ddtAcc := make([]float64, chunk)
	pre := make([]float64, chunk)
	for bi := 0; bi < batch; bi++ {
		for e := 0; e < ed; e++ {
			for i := range A {
				A[i] = -math.Exp(float64(aLog[e*n+i]))
				sCarry[i] = 0
				dA[i] = 0
			}
			dD = 0
			for ch := nChunks - 1; ch >= 0; ch-- {
				t0 := ch * chunk
				in := func(t int) (x int, dt, uv, g float64) {
					x = (bi*length+t)*ed + e
					dt = scanSoftplus(float64(delta[x]))
					uv = float64(u[x])
					g = float64(dy[x])
					if z != nil {
						zv := float64(z[x])
						g *= zv * scanSigmoid(zv)
					}
					return
				}
				for k := 0; k < chunk; k++ {
					duAcc[k], ddtAcc[k], pre[k] = 0, 0, 0
				}
				for i := 0; i < n; i++ {
					step := func(t int) scanPair {
						if t >= length {
							return scanPair{1, 0}
						}
						x, dt, uv, _ := in(t)
						_ = x
						return scanPair{math.Exp(dt * A[i]), dt * float64(b[(bi*length+t)*n+i]) * uv}
					}
					// Forward: recompute h from the chunk's start state.
					for p := 0; p < threads; p++ {
						acc := scanPair{1, 0}
						for k := 0; k < items; k++ {
							acc = scanCompose(acc, step(t0+p*items+k))
						}
						seg[p] = acc
					}
					excl, _ := scanRowExclusive(seg)
					h0 := float64(hs[((bi*ed+e)*nChunks+ch)*n+i])
					for p := 0; p < threads; p++ {
						hv := excl[p].a*h0 + excl[p].b
						for k := 0; k < items; k++ {
							hprev[p*items+k] = hv
							st := step(t0 + p*items + k)
							hv = st.a*hv + st.b
							hcur[p*items+k] = hv
						}
					}
					// Reverse: the map s -> a[t]*(x[t] + s), x[t] = g[t]*c[t],
					// composed over a thread's items from the last to the first,
					// then scanned across threads from the last to the first.
					x := func(t int) float64 {
						if t >= length {
							return 0
						}
						_, _, _, g := in(t)
						return g * float64(c[(bi*length+t)*n+i])
					}
					for p := 0; p < threads; p++ {
						acc := scanPair{1, 0}
						for k := items - 1; k >= 0; k-- {
							t := t0 + p*items + k
							st := step(t)
							acc = scanCompose(acc, scanPair{st.a, st.a * x(t)})
						}
						seg[threads-1-p] = acc
					}
					rexcl, rtotal := scanRowExclusive(seg)
					for p := 0; p < threads; p++ {
						r := rexcl[threads-1-p]
						s := r.a*sCarry[i] + r.b // adjoint arriving at this thread's last item from the right
						for k := items - 1; k >= 0; k-- {
							t := t0 + p*items + k
							if t >= length {
								continue
							}
							st := step(t)
							_, dt, uv, g := in(t)
							dh := x(t) + s
							bt := float64(b[(bi*length+t)*n+i])
							hp := hprev[p*items+k]
							ddtAcc[p*items+k] += dh * (bt*uv + A[i]*st.a*hp)
							duAcc[p*items+k] += dh * dt * bt
							dA[i] += dh * st.a * dt * hp
							dbAcc[(bi*length+t)*n+i] += dh * dt * uv
							dcAcc[(bi*length+t)*n+i] += g * hcur[p*items+k]
							pre[p*items+k] += float64(c[(bi*length+t)*n+i]) * hcur[p*items+k]
							s = st.a * dh
						}
					}
					sCarry[i] = rtotal.a*sCarry[i] + rtotal.b
				}
				for k := 0; k < chunk && t0+k < length; k++ {
					x, dt, uv, g := in(t0 + k)
					_ = dt
					du[x] = T(duAcc[k] + g*float64(d[e]))
					ddelta[x] = T(ddtAcc[k] * scanSigmoid(float64(delta[x])))
					dD += g * uv
					if z != nil {
						zv := float64(z[x])
						s := scanSigmoid(zv)
						dz[x] = T(float64(dy[x]) * (pre[k] + float64(d[e])*uv) * s * (1 + zv*(1-s)))
					}
				}
			}
			for i := 0; i < n; i++ {
				daLog[e*n+i] += T(dA[i] * A[i])
			}
			dd[e] += T(dD)
		}
	}
	for i := range dbAcc {
		db[i] = T(dbAcc[i])
		dc[i] = T(dcAcc[i])
	}
}
