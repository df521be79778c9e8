// shim.h: mom's own declarations of the few MPI calls the data-parallel
// trainer makes, resolved with dlopen/dlsym from Open MPI's libmpi at run
// time. They follow the MPI standard's C bindings; the handles are Open
// MPI's (pointers to the library's predefined global objects), see
// abi.c.
#ifndef MOM_MPI_SHIM_H
#define MOM_MPI_SHIM_H

#include <stddef.h>
#include <stdint.h>

// An MPI handle (communicator, datatype, op, info, error handler). In Open
// MPI every handle is a pointer.
typedef void *mm_handle;

typedef struct mm_lib {
	void *dl;
	// Entry points (the MPI standard's C bindings).
	int (*Init_thread)(int *argc, char ***argv, int required, int *provided);
	int (*Initialized)(int *flag);
	int (*Finalize)(void);
	int (*Abort)(mm_handle comm, int code);
	int (*Comm_rank)(mm_handle comm, int *rank);
	int (*Comm_size)(mm_handle comm, int *size);
	int (*Comm_split_type)(mm_handle comm, int type, int key, mm_handle info, mm_handle *out);
	int (*Comm_free)(mm_handle *comm);
	int (*Comm_dup)(mm_handle comm, mm_handle *out);
	int (*Comm_set_errhandler)(mm_handle comm, mm_handle handler);
	int (*Barrier)(mm_handle comm);
	int (*Bcast)(void *buf, int count, mm_handle type, int root, mm_handle comm);
	int (*Allgather)(const void *send, int scount, mm_handle stype, void *recv, int rcount,
	                 mm_handle rtype, mm_handle comm);
	int (*Alltoall)(const void *send, int scount, mm_handle stype, void *recv, int rcount,
	                mm_handle rtype, mm_handle comm);
	int (*Reduce_local)(const void *in, void *inout, int count, mm_handle type, mm_handle op);
	int (*Error_string)(int code, char *msg, int *len);
	int (*Get_library_version)(char *version, int *len);
	// MPI-3 shared-memory windows (MPI_Aint is ptrdiff_t in Open MPI).
	int (*Win_allocate_shared)(ptrdiff_t size, int disp_unit, mm_handle info, mm_handle comm,
	                           void *baseptr, mm_handle *win);
	int (*Win_shared_query)(mm_handle win, int rank, ptrdiff_t *size, int *disp_unit, void *baseptr);
	int (*Win_set_errhandler)(mm_handle win, mm_handle handler);
	int (*Win_lock_all)(int assert, mm_handle win);
	int (*Win_unlock_all)(mm_handle win);
	int (*Win_sync)(mm_handle win);
	int (*Win_free)(mm_handle *win);
	// Predefined handles.
	mm_handle comm_world, t_byte, t_float, op_sum, info_null, errors_return;
	// Constants.
	int thread_funneled, thread_multiple, comm_type_shared, mode_nocheck;
} mm_lib;

// mm_open loads an MPI library and resolves everything above; on failure it
// returns NULL with a message in err.
mm_lib *mm_open(const char *path, char *err, size_t errlen);

// Calls through the table (cgo cannot call function pointers directly). A
// NULL comm is MPI_COMM_WORLD.
int mm_init(mm_lib *L, int multiple, int *provided);
int mm_initialized(mm_lib *L);
int mm_finalize(mm_lib *L);
int mm_abort(mm_lib *L, int code);
int mm_rank(mm_lib *L, mm_handle comm, int *rank);
int mm_size(mm_lib *L, mm_handle comm, int *size);
int mm_split_shared(mm_lib *L, mm_handle *out);
int mm_comm_free(mm_lib *L, mm_handle *comm);
int mm_comm_dup(mm_lib *L, mm_handle *out);
int mm_errors_return(mm_lib *L, mm_handle comm);
int mm_barrier(mm_lib *L, mm_handle comm);
int mm_bcast(mm_lib *L, mm_handle comm, void *buf, int bytes, int root);
int mm_allgather_bytes(mm_lib *L, mm_handle comm, const void *send, int bytes, void *recv);
int mm_alltoall_floats(mm_lib *L, mm_handle comm, const float *send, int count, float *recv);
int mm_allgather_floats(mm_lib *L, mm_handle comm, const float *send, int count, float *recv);
int mm_sum_local(mm_lib *L, const float *in, float *inout, int count);
// Shared-memory windows: mm_win_shared allocates bytes of this rank's part
// of a window over comm (MPI_Win_allocate_shared), sets MPI_ERRORS_RETURN
// on it and opens a passive-target epoch on every rank
// (MPI_Win_lock_all with MPI_MODE_NOCHECK) that lasts until mm_win_free.
int mm_win_shared(mm_lib *L, mm_handle comm, ptrdiff_t bytes, void **base, mm_handle *win);
// mm_win_query returns rank's part of win (MPI_Win_shared_query).
int mm_win_query(mm_lib *L, mm_handle win, int rank, void **base, ptrdiff_t *bytes);
// mm_win_fence makes this rank's stores to win visible to the ranks of
// comm and theirs to it: MPI_Win_sync, MPI_Barrier, MPI_Win_sync (the
// MPI-3 shared-memory model's synchronisation in a passive epoch).
int mm_win_fence(mm_lib *L, mm_handle win, mm_handle comm);
// mm_win_free ends the epoch and frees win (collective).
int mm_win_free(mm_lib *L, mm_handle *win);

// Loops of the shared-memory reduction (no MPI calls: any thread).
// mm_copy copies bytes; mm_sum_ranks sets out[i] to
// ((in[0][i] + in[1][i]) + in[2][i]) + ... for i < n: the sum in rank
// order, element by element.
void mm_copy(void *dst, const void *src, size_t bytes);
void mm_sum_ranks(float *out, const float *const *in, int nin, size_t n);
// mm_sum_ranks_bf16 is mm_sum_ranks over bfloat16 values (the upper 16 bits
// of a float32): each sum is taken in float32 in rank order and rounded to
// the nearest bfloat16, ties to even, once; out may be in[0].
void mm_sum_ranks_bf16(uint16_t *out, const uint16_t *const *in, int nin, size_t n);

void mm_error_string(mm_lib *L, int code, char *msg, int cap);
void mm_version(mm_lib *L, char *msg, int cap);

#endif
