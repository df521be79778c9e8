// Command reducebench times package mpi's gradient reduction on its own
// (no GPU, no model): one bucket summed over the ranks again and again by
// each method, as the data-parallel trainer sums its buckets. Run it the
// way mom trains:
//
//	go build -o /tmp/reducebench ./trainer/mpi/mpitest/reducebench
//	mpirun -np 2 --bind-to none --map-by slot --mca btl self,vader /tmp/reducebench -mib 160
//
// Rank 0 prints, per method, the time of one reduction and the bucket's
// bytes over that time (GB/s), and checks every rank got the same bits.
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	"mom/trainer/mpi"
)

func main() {
	mib := flag.Float64("mib", 160, "bucket size in MiB")
	iters := flag.Int("iters", 20, "timed reductions per method (after 2 warm-up ones)")
	methods := flag.String("methods", "shm,alltoall", "methods to time, comma-separated (shm, alltoall)")
	lanes := flag.Int("lanes", 4, "MPI threads (lanes) per rank (the all-to-all method)")
	threads := flag.Int("threads", 0, "threads per rank of the shared-memory method (0: the rank's share of the cores)")
	flag.Parse()
	if err := run(*mib, *iters, *methods, *lanes, *threads); err != nil {
		fmt.Fprintln(os.Stderr, "reducebench:", err)
		os.Exit(1)
	}
}

func run(mib float64, iters int, methods string, lanes, threads int) error {
	w, err := mpi.Open(mpi.Options{Lanes: lanes, Threads: threads})
	if err != nil {
		return err
	}
	defer w.Close()
	n := int(mib * (1 << 20) / 4)
	for _, name := range strings.Split(methods, ",") {
		m, err := mpi.ParseMethod(name)
		if err != nil {
			return err
		}
		red, err := w.NewReducerMethod([]int{n}, m)
		if err != nil {
			return fmt.Errorf("%v: %w", m, err)
		}
		send := make([]float32, red.Len(0))
		for i := range send {
			send[i] = float32((i+w.Rank())%1000) * 1e-3
		}
		var start time.Time
		var busy time.Duration
		var sum []float32
		for it := -2; it < iters; it++ {
			if it == 0 {
				if err := w.Barrier(); err != nil {
					return err
				}
				start = time.Now()
			}
			if err := red.Start(0, send); err != nil {
				return err
			}
			s, sp, err := red.Wait(0)
			if err != nil {
				return err
			}
			if it >= 0 {
				busy += sp.Dur()
			}
			sum = s
		}
		per := time.Since(start) / time.Duration(iters)
		// Every rank holds the same bits: compare a fingerprint.
		var h uint64
		for _, v := range sum {
			h = h*1099511628211 ^ uint64(math.Float32bits(v))
		}
		all, err := w.Allgather([]byte(fmt.Sprintf("%016x", h)))
		if err != nil {
			return err
		}
		for k := 1; k < w.Size(); k++ {
			if string(all[16*k:16*k+16]) != string(all[:16]) {
				return fmt.Errorf("%v: rank %d's sums differ from rank 0's", m, k)
			}
		}
		red.Release()
		if w.Rank() == 0 {
			fmt.Printf("%-8v %4d ranks, %6.1f MiB bucket: %8.2f ms per reduction, %6.2f GB/s (on the MPI thread %.2f ms; %d lanes, %d threads per rank)\n",
				red.Method(), w.Size(), mib, float64(per)/1e6, float64(4*len(send))/per.Seconds()/1e9,
				float64(busy/time.Duration(iters))/1e6, w.Lanes(), w.Threads())
		}
	}
	return nil
}
