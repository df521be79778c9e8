// Package mpi is mom's thin layer over MPI for data-parallel training: one
// process per GPU, started by `mpirun -np N mom train ...`.
//
// # Loading
//
// Nothing is linked at build time: Open loads Open MPI's libmpi with
// dlopen ($MOM_MPI_LIB, else libmpi.so.40, else libmpi.so), the way
// package gpu loads WebGPU. So `go build ./cmd/mom` needs no MPI headers
// and the binary runs on machines without MPI; only a process that an MPI
// launcher started (Launched) loads the library. The declarations in
// shim.h are mom's own, from the MPI standard's C bindings. The handles
// are Open MPI's: its predefined objects (MPI_COMM_WORLD, MPI_FLOAT,
// MPI_SUM, ...) are global symbols of libmpi (ompi_mpi_comm_world,
// ompi_mpi_float, ompi_mpi_op_sum, ...) whose addresses are the handles,
// and dlsym finds them. MPICH, Intel MPI and MVAPICH use integer handles
// with fixed values (MPI_COMM_WORLD is 0x44000000, MPI_FLOAT 0x4c00040a,
// ...) instead: supporting them means a second handle table in shim.c,
// chosen by which symbols the library exports; the calls are the same.
// MPI 5's standard ABI (libmpi_abi) would make one table serve all.
//
// # Threads
//
// MPI is initialised on one goroutine locked to its OS thread (lane 0), and
// every later call runs on a lane, in the order it was made: at the
// MPI_THREAD_FUNNELED level with one lane; with several (Options.Lanes),
// at MPI_THREAD_MULTIPLE, each further lane with a duplicate of
// MPI_COMM_WORLD of its own, so that all-to-all reductions run side by
// side on several cores. (A shared-memory reduction runs on lane 0 and
// spreads its copies and sums over goroutines that call no MPI function.)
// The trainer hands gradient buckets to the lanes and carries on
// recording and waiting for the GPU, so communication overlaps the
// backward pass.
//
// # Reductions
//
// Reducer sums buckets of float32 values in a fixed order, element i being
// ((x_0[i] + x_1[i]) + x_2[i]) + ... over the ranks' buckets x_k, so every
// rank holds the same bits and a run is reproducible whatever algorithm
// the library picks for its collectives. It has two methods (Method),
// which give the same bits:
//
//   - SharedMemory, when every rank runs on one host (the default there):
//     an MPI-3 shared-memory window (MPI_Win_allocate_shared on the host's
//     communicator from MPI_Comm_split_type, the peers' parts found with
//     MPI_Win_shared_query, one passive epoch from MPI_Win_lock_all, and
//     MPI_Win_sync + MPI_Barrier + MPI_Win_sync between the phases). Each
//     rank copies its bucket into its slot, then sums its segment reading
//     every rank's slot directly, with Options.Threads threads; no bucket
//     goes through MPI's copies. Its memory is in /dev/shm.
//   - AllToAll, anywhere: MPI_Alltoall of segments, a local sum in rank
//     order (MPI_Reduce_local), MPI_Allgather, on the lanes.
//
// $MOM_MPI_REDUCE (shm, alltoall or auto) or Options.Reduce picks one;
// the command trainer/mpi/mpitest/reducebench and BenchmarkReduce time
// them.
//
// # Failures
//
// Errors of MPI calls come back as Go errors naming the rank and the call
// (MPI_ERRORS_RETURN). A collective that waits longer than
// Options.Timeout makes its rank report the stall and exit; mpirun then
// ends every other rank (it sends SIGTERM, and SIGKILL a second later), as
// it does when a rank dies or calls Abort. So a lost rank stops the job
// within a bounded time.
package mpi
