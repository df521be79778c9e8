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
	// Predefined handles.
	mm_handle comm_world, t_byte, t_float, op_sum, info_null, errors_return;
	// Constants.
	int thread_funneled, thread_multiple, comm_type_shared;
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
void mm_error_string(mm_lib *L, int code, char *msg, int cap);
void mm_version(mm_lib *L, char *msg, int cap);

#endif
