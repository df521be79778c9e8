package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"mom/gpu"
	"mom/trainer"
	"mom/trainer/mpi"
)

// parallelFlags are train's data-parallel flags (they matter under mpirun).
type parallelFlags struct {
	share      *bool
	bucketMB   *float64
	checkEvery *int
	timeout    *time.Duration
	lanes      *int
	exchange   *string
	gather     *string
}

func addParallelFlags(fs *flag.FlagSet) parallelFlags {
	return parallelFlags{
		share: fs.Bool("share-adapter", false, "under mpirun: let several ranks use one adapter (tests on one CPU or GPU); refused otherwise"),
		bucketMB: fs.Float64("bucket-mb", float64(trainer.DefaultBucketBytes)/(1<<20),
			"under mpirun: size in MiB of the gradient buckets summed over the ranks while the backward runs"),
		checkEvery: fs.Int("check-every", trainer.DefaultCheckEvery,
			"under mpirun: compare the ranks' parameter checksums every N steps (also at the start and before each checkpoint)"),
		timeout: fs.Duration("comm-timeout", mpi.DefaultTimeout,
			"under mpirun: a rank whose collective waits longer for the others stops, and mpirun ends the job"),
		lanes: fs.Int("comm-lanes", 0,
			"under mpirun: MPI threads per rank that sum gradient buckets side by side (0: one per 2 cores of the rank's share of the host, at most 4)"),
		exchange: fs.String("grad-exchange", trainer.ExchangeF32,
			"under mpirun: how gradients and their sums cross between GPU and host: f32, or bf16 (half the bytes; each rank's gradients and the sums rounded to bfloat16, summed in float32)"),
		gather: fs.String("embedding-gather", trainer.GatherAuto,
			"under mpirun, with a tied embedding: sum its table's gradient after the head's backward and gather every rank's token rows after the last stage, "+
				"instead of summing the whole table after the backward: auto (when the rows are at most half the table's bytes), on or off"),
	}
}

// commLanes is the number of MPI threads a rank runs: --comm-lanes, else
// one per 2 cores of this rank's share of the host (from mpirun's count of
// ranks here), between 1 and 4.
func (p parallelFlags) commLanes() int {
	if *p.lanes > 0 {
		return *p.lanes
	}
	local, err := strconv.Atoi(os.Getenv("OMPI_COMM_WORLD_LOCAL_SIZE"))
	if err != nil || local < 1 {
		local = 1
	}
	return min(4, max(1, runtime.NumCPU()/(2*local)))
}

// apply checks the flags and puts them in o.
func (p parallelFlags) apply(o *trainer.Options) error {
	switch {
	case !(*p.bucketMB > 0) || *p.bucketMB > 1<<20:
		return usagef("--bucket-mb %g must be positive (MiB)", *p.bucketMB)
	case *p.checkEvery <= 0:
		return usagef("--check-every %d must be positive", *p.checkEvery)
	case *p.timeout <= 0:
		return usagef("--comm-timeout %s must be positive", *p.timeout)
	case *p.lanes < 0 || *p.lanes > 64:
		return usagef("--comm-lanes %d must lie in 0..64", *p.lanes)
	}
	o.BucketBytes = max(4, int64(*p.bucketMB*(1<<20)))
	o.CheckEvery = *p.checkEvery
	o.GradExchange = *p.exchange
	o.EmbeddingGather = *p.gather
	if err := o.ValidateExchange(); err != nil {
		return usagef("%v", err)
	}
	return nil
}

// parseAdapters reads --adapter: "" or -1 for the best adapter (one per
// rank under mpirun), an index, or a comma-separated list of indexes, one
// per rank on a host (local rank k takes the k-th).
func parseAdapters(s string, ranks bool) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "-1" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		i, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || i < 0 {
			return nil, usagef("--adapter %q: want an adapter index as `mom devices` lists them, or a comma-separated list (one per rank on a host)", s)
		}
		out = append(out, i)
	}
	if len(out) > 1 && !ranks {
		return nil, usagef("--adapter %s lists one adapter per rank of an mpirun job; a single process takes one", s)
	}
	return out, nil
}

// rankAdapter picks the adapter of local rank k of n on a host that has
// count adapters, best of which are the best kind's (gpu.BestKind): the
// k-th of list when --adapter gives one (its only entry for every rank
// when it has one), else the k-th of best. A rank left without an adapter
// of its own takes one of the others' only when share allows it.
func rankAdapter(count int, best, list []int, k, n int, share bool) (int, error) {
	var idx int
	switch {
	case len(list) == 1:
		idx = list[0]
		if n > 1 && !share {
			return 0, fmt.Errorf("--adapter %d puts all %d ranks of this host on one adapter: list one per rank (--adapter 0,1,...), or give --share-adapter", idx, n)
		}
	case len(list) > 1:
		if k >= len(list) {
			return 0, fmt.Errorf("--adapter lists %d adapters, but this host runs %d ranks (this is local rank %d): list one per rank", len(list), n, k)
		}
		idx = list[k]
	default:
		if len(best) == 0 {
			return 0, errors.New("no adapter found")
		}
		if k >= len(best) && !share {
			return 0, fmt.Errorf("this host runs %d ranks but has %d adapter(s) of the best kind (indexes %v), so local rank %d has none of its own: "+
				"give each rank a GPU; on a host with several identical GPUs use --runtime wgpu (Dawn shows one adapter per kind of GPU); "+
				"or --share-adapter to put several ranks on one adapter", n, len(best), best, k)
		}
		idx = best[k%len(best)]
	}
	if idx >= count {
		return 0, fmt.Errorf("adapter %d does not exist (there are %d; see `mom devices`)", idx, count)
	}
	return idx, nil
}

// idRecord is the size of one rank's adapter record in the exchange.
const idRecord = 512

// openRankDevice opens this rank's adapter, logs it with the GPU's id,
// and checks with the other ranks that no two ranks on one host share a
// GPU (unless --share-adapter).
func openRankDevice(w *mpi.World, df deviceFlags, pf parallelFlags, stderr io.Writer) (*gpu.Device, error) {
	rt, err := gpu.ParseRuntime(*df.runtime)
	if err != nil {
		return nil, err
	}
	list, err := parseAdapters(*df.adapter, true)
	if err != nil {
		return nil, err
	}
	lib, err := gpu.Load(rt)
	if err != nil {
		return nil, err
	}
	infos, err := lib.Adapters()
	if err != nil {
		return nil, err
	}
	idx, err := rankAdapter(len(infos), gpu.BestKind(infos), list, w.LocalRank(), w.LocalSize(), *pf.share)
	if err != nil {
		return nil, err
	}
	id := gpu.UniqueIDs(infos)[idx]
	o := df.options()
	o.Adapter = idx
	d, err := lib.Open(o)
	if err != nil {
		return nil, err
	}
	rec := make([]byte, idRecord)
	copy(rec, w.Host()+"\x00"+id)
	all, err := w.Allgather(rec)
	if err != nil {
		d.Close()
		return nil, err
	}
	fmt.Fprintf(stderr, "mom: rank %d of %d (%s, local rank %d): adapter [%d] %s, %s\n", w.Rank(), w.Size(), w.Host(), w.LocalRank(), idx, d, id)
	seen := map[string]int{}
	for r := 0; r < w.Size(); r++ {
		key := strings.TrimRight(string(all[r*idRecord:(r+1)*idRecord]), "\x00")
		if prev, ok := seen[key]; ok && !*pf.share {
			host, gid, _ := strings.Cut(key, "\x00")
			d.Close()
			return nil, agreed(fmt.Errorf("ranks %d and %d on %s both use the GPU %s: give each rank its own (--adapter 0,1,...; --runtime wgpu "+
				"reaches identical GPUs), or --share-adapter to allow it", prev, r, host, gid))
		}
		seen[key] = r
	}
	return d, nil
}

// agreedError is an error every rank reaches together (they ended a
// collective with the same data): the ranks can finish MPI cleanly, and
// rank 0 alone reports it.
type agreedError struct{ err error }

func (e agreedError) Error() string { return e.err.Error() }
func (e agreedError) Unwrap() error { return e.err }

func agreed(err error) error { return agreedError{err} }

// sharedOptions is what rank 0 sends the other ranks before training: the
// options it resolved (the run folder is rank 0's), or why it could not.
type sharedOptions struct {
	Options trainer.Options `json:"options"`
	Err     string          `json:"err,omitempty"`
	Usage   bool            `json:"usage,omitempty"`
}

// shareOptions sends rank 0's resolved options (or its error) to every
// rank; every rank returns the same.
func shareOptions(w *mpi.World, o trainer.Options, oerr error) (trainer.Options, error) {
	var msg []byte
	if w.Rank() == 0 {
		so := sharedOptions{Options: o}
		if oerr != nil {
			so.Err, so.Usage = oerr.Error(), errors.Is(oerr, errUsage)
		}
		var err error
		if msg, err = json.Marshal(so); err != nil {
			return o, fmt.Errorf("train: sending the options: %w", err)
		}
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(msg)))
	if err := w.Bcast(n[:], 0); err != nil {
		return o, err
	}
	if w.Rank() != 0 {
		msg = make([]byte, binary.LittleEndian.Uint64(n[:]))
	}
	if err := w.Bcast(msg, 0); err != nil {
		return o, err
	}
	if w.Rank() == 0 {
		if oerr != nil {
			return o, agreed(oerr)
		}
		return o, nil
	}
	var so sharedOptions
	if err := json.Unmarshal(msg, &so); err != nil {
		return o, fmt.Errorf("train: options from rank 0: %w", err)
	}
	if so.Err != "" {
		var err error = errors.New(so.Err)
		if so.Usage {
			err = fmt.Errorf("%w: %s", errUsage, so.Err)
		}
		return o, agreed(err)
	}
	so.Options.Progress, so.Options.Terminal, so.Options.OnRecord = o.Progress, o.Terminal, o.OnRecord
	return so.Options, nil
}

// trainRank is `mom train` as one rank of an mpirun job. Rank 0 resolves
// the options (the run folder is its own) and sends them to the others;
// each rank opens its own GPU; rank 0 reports. A clean end (finished, or
// stopped by a signal with a checkpoint) finalises MPI on every rank; an
// error of this rank alone aborts the whole job (MPI_Abort), naming the
// rank.
func trainRank(fs *flag.FlagSet, mf modelFlags, df deviceFlags, pf parallelFlags, o trainer.Options, stdout, stderr io.Writer) error {
	w, err := mpi.Open(mpi.Options{Timeout: *pf.timeout, Stderr: stderr, Lanes: pf.commLanes()})
	if err != nil {
		return err
	}
	rank := w.Rank()
	fail := func(err error) error {
		var ae agreedError
		if errors.As(err, &ae) {
			// Every rank found this error. Rank 0 reports it before the
			// ranks finalise together: a rank that exits first with a
			// non-zero status makes mpirun kill the others, so a message
			// printed after finalising could be lost.
			if rank == 0 {
				fmt.Fprintf(stderr, "mom train: %v\n", ae.err)
			}
			w.Close()
			return quietError{code: exitCodeOf(ae.err)}
		}
		fmt.Fprintf(stderr, "mom train: %v: %v\n", w, err)
		w.Abort(1)
		return err // not reached: Abort ends the process
	}
	var oerr error
	if rank == 0 {
		o, oerr = trainOptions(fs, mf, o)
	}
	if o, err = shareOptions(w, o, oerr); err != nil {
		return fail(err)
	}
	o.World = w
	if err := o.Validate(); err != nil {
		return fail(agreed(usagef("%v", err)))
	}
	d, err := openRankDevice(w, df, pf, stderr)
	if err != nil {
		return fail(err)
	}
	if rank == 0 {
		o.Progress = stderr
		if f, ok := stderr.(*os.File); ok {
			o.Terminal = trainer.IsTerminal(f)
		}
		announce(stderr, o, d)
	}
	ctx, stop := stopOnSignals(stderr, w.String())
	res, err := trainer.Train(ctx, d, o)
	stop()
	d.Close()
	var s signalStop
	if err != nil && !errors.As(err, &s) && !errors.Is(err, trainer.ErrStoppedWithOthers) {
		return fail(err)
	}
	if rank == 0 {
		printResult(stdout, o, res, err)
	}
	if cerr := w.Close(); cerr != nil && err == nil {
		return cerr
	}
	if errors.Is(err, trainer.ErrStoppedWithOthers) {
		return quietError{code: 0}
	}
	if rank != 0 && err != nil {
		return quietError{code: exitCodeOf(trainExit(err))}
	}
	return trainExit(err)
}

// quietError ends the command with an exit status and no message (another
// rank reports).
type quietError struct{ code int }

func (e quietError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// exitCodeOf is the exit status run gives err.
func exitCodeOf(err error) int {
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, errUsage):
		return 2
	}
	return 1
}
