// shim.c: loads libmpi with dlopen and calls it through a table.
//
// The MPI standard fixes the C functions' names and arguments, but not the
// binary form of handles: Open MPI's MPI_COMM_WORLD is the address of the
// library's global object ompi_mpi_comm_world, MPI_FLOAT that of
// ompi_mpi_float, and so on, which dlsym finds. (MPICH and its relatives
// use integer handles with fixed values instead: another table, see
// doc.go.) The constants below are Open MPI's enum values from its
// documented mpi.h.
#include "shim.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	OMPI_THREAD_FUNNELED = 1,   // MPI_THREAD_SINGLE is 0, FUNNELED 1, SERIALIZED 2, MULTIPLE 3
	OMPI_THREAD_MULTIPLE = 3,
	OMPI_COMM_TYPE_SHARED = 0,  // the first MPI_COMM_TYPE_* value
	OMPI_MODE_NOCHECK = 1,      // #define MPI_MODE_NOCHECK 1
};

static void *sym(void *dl, const char *name, char *err, size_t errlen, int *ok) {
	void *p = dlsym(dl, name);
	if (!p && *ok) {
		snprintf(err, errlen, "symbol %s not found (not Open MPI's libmpi?)", name);
		*ok = 0;
	}
	return p;
}

mm_lib *mm_open(const char *path, char *err, size_t errlen) {
	// RTLD_GLOBAL: Open MPI's own plugins (mca_*.so), which it dlopens
	// itself, resolve symbols of libmpi and libopen-pal.
	void *dl = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
	if (!dl) {
		const char *m = dlerror();
		snprintf(err, errlen, "%s", m ? m : "dlopen failed");
		return NULL;
	}
	mm_lib *L = calloc(1, sizeof *L);
	if (!L) {
		snprintf(err, errlen, "out of memory");
		dlclose(dl);
		return NULL;
	}
	int ok = 1;
	L->dl = dl;
#define FN(field, name) *(void **)(&L->field) = sym(dl, name, err, errlen, &ok)
	FN(Init_thread, "MPI_Init_thread");
	FN(Initialized, "MPI_Initialized");
	FN(Finalize, "MPI_Finalize");
	FN(Abort, "MPI_Abort");
	FN(Comm_rank, "MPI_Comm_rank");
	FN(Comm_size, "MPI_Comm_size");
	FN(Comm_split_type, "MPI_Comm_split_type");
	FN(Comm_free, "MPI_Comm_free");
	FN(Comm_dup, "MPI_Comm_dup");
	FN(Comm_set_errhandler, "MPI_Comm_set_errhandler");
	FN(Barrier, "MPI_Barrier");
	FN(Bcast, "MPI_Bcast");
	FN(Allgather, "MPI_Allgather");
	FN(Alltoall, "MPI_Alltoall");
	FN(Reduce_local, "MPI_Reduce_local");
	FN(Error_string, "MPI_Error_string");
	FN(Get_library_version, "MPI_Get_library_version");
	FN(Win_allocate_shared, "MPI_Win_allocate_shared");
	FN(Win_shared_query, "MPI_Win_shared_query");
	FN(Win_set_errhandler, "MPI_Win_set_errhandler");
	FN(Win_lock_all, "MPI_Win_lock_all");
	FN(Win_unlock_all, "MPI_Win_unlock_all");
	FN(Win_sync, "MPI_Win_sync");
	FN(Win_free, "MPI_Win_free");
#undef FN
	L->comm_world = sym(dl, "ompi_mpi_comm_world", err, errlen, &ok);
	L->t_byte = sym(dl, "ompi_mpi_byte", err, errlen, &ok);
	L->t_float = sym(dl, "ompi_mpi_float", err, errlen, &ok);
	L->op_sum = sym(dl, "ompi_mpi_op_sum", err, errlen, &ok);
	L->info_null = sym(dl, "ompi_mpi_info_null", err, errlen, &ok);
	L->errors_return = sym(dl, "ompi_mpi_errors_return", err, errlen, &ok);
	L->thread_funneled = OMPI_THREAD_FUNNELED;
	L->thread_multiple = OMPI_THREAD_MULTIPLE;
	L->comm_type_shared = OMPI_COMM_TYPE_SHARED;
	L->mode_nocheck = OMPI_MODE_NOCHECK;
	if (!ok) {
		dlclose(dl);
		free(L);
		return NULL;
	}
	return L;
}

int mm_init(mm_lib *L, int multiple, int *provided) {
	return L->Init_thread(NULL, NULL, multiple ? L->thread_multiple : L->thread_funneled, provided);
}

int mm_initialized(mm_lib *L) {
	int flag = 0;
	L->Initialized(&flag);
	return flag;
}

int mm_finalize(mm_lib *L) { return L->Finalize(); }

int mm_abort(mm_lib *L, int code) { return L->Abort(L->comm_world, code); }

int mm_rank(mm_lib *L, mm_handle comm, int *rank) {
	return L->Comm_rank(comm ? comm : L->comm_world, rank);
}

int mm_size(mm_lib *L, mm_handle comm, int *size) {
	return L->Comm_size(comm ? comm : L->comm_world, size);
}

int mm_split_shared(mm_lib *L, mm_handle *out) {
	return L->Comm_split_type(L->comm_world, L->comm_type_shared, 0, L->info_null, out);
}

int mm_comm_free(mm_lib *L, mm_handle *comm) { return L->Comm_free(comm); }

int mm_comm_dup(mm_lib *L, mm_handle *out) { return L->Comm_dup(L->comm_world, out); }

#define COMM(c) ((c) ? (c) : L->comm_world)

int mm_errors_return(mm_lib *L, mm_handle comm) {
	return L->Comm_set_errhandler(COMM(comm), L->errors_return);
}

int mm_barrier(mm_lib *L, mm_handle comm) { return L->Barrier(COMM(comm)); }

int mm_bcast(mm_lib *L, mm_handle comm, void *buf, int bytes, int root) {
	return L->Bcast(buf, bytes, L->t_byte, root, COMM(comm));
}

int mm_allgather_bytes(mm_lib *L, mm_handle comm, const void *send, int bytes, void *recv) {
	return L->Allgather(send, bytes, L->t_byte, recv, bytes, L->t_byte, COMM(comm));
}

int mm_alltoall_floats(mm_lib *L, mm_handle comm, const float *send, int count, float *recv) {
	return L->Alltoall(send, count, L->t_float, recv, count, L->t_float, COMM(comm));
}

int mm_allgather_floats(mm_lib *L, mm_handle comm, const float *send, int count, float *recv) {
	return L->Allgather(send, count, L->t_float, recv, count, L->t_float, COMM(comm));
}

int mm_sum_local(mm_lib *L, const float *in, float *inout, int count) {
	return L->Reduce_local(in, inout, count, L->t_float, L->op_sum);
}

int mm_win_shared(mm_lib *L, mm_handle comm, ptrdiff_t bytes, void **base, mm_handle *win) {
	*base = NULL;
	*win = NULL;
	int rc = L->Win_allocate_shared(bytes, 1, L->info_null, comm, (void *)base, win);
	if (rc != 0) return rc;
	if ((rc = L->Win_set_errhandler(*win, L->errors_return)) != 0) return rc;
	return L->Win_lock_all(L->mode_nocheck, *win);
}

int mm_win_query(mm_lib *L, mm_handle win, int rank, void **base, ptrdiff_t *bytes) {
	int unit = 0;
	*base = NULL;
	return L->Win_shared_query(win, rank, bytes, &unit, (void *)base);
}

int mm_win_fence(mm_lib *L, mm_handle win, mm_handle comm) {
	int rc = L->Win_sync(win);
	if (rc == 0) rc = L->Barrier(comm);
	if (rc == 0) rc = L->Win_sync(win);
	return rc;
}

int mm_win_free(mm_lib *L, mm_handle *win) {
	int rc = L->Win_unlock_all(*win);
	int rc2 = L->Win_free(win);
	return rc ? rc : rc2;
}

void mm_copy(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }

// mm_sum_ranks works in blocks that stay in the cache while the later
// ranks' values are added. Each element's additions happen in rank order
// whatever the compiler vectorises (no reassociation without -ffast-math).
void mm_sum_ranks(float *restrict out, const float *const *in, int nin, size_t n) {
	if (nin == 1) {
		memcpy(out, in[0], n * sizeof *out);
		return;
	}
	enum { BLOCK = 4096 };
	for (size_t lo = 0; lo < n; lo += BLOCK) {
		size_t m = n - lo < BLOCK ? n - lo : BLOCK;
		float *restrict o = out + lo;
		const float *restrict a = in[0] + lo;
		const float *restrict b = in[1] + lo;
		for (size_t i = 0; i < m; i++) o[i] = a[i] + b[i];
		for (int k = 2; k < nin; k++) {
			const float *restrict c = in[k] + lo;
			for (size_t i = 0; i < m; i++) o[i] = o[i] + c[i];
		}
	}
}

void mm_error_string(mm_lib *L, int code, char *msg, int cap) {
	// MPI writes at most MPI_MAX_ERROR_STRING (256 in Open MPI) bytes.
	char buf[1024] = {0};
	int n = 0;
	if (L->Error_string(code, buf, &n) != 0) snprintf(buf, sizeof buf, "MPI error %d", code);
	snprintf(msg, (size_t)cap, "%s", buf);
}

void mm_version(mm_lib *L, char *msg, int cap) {
	char buf[1024] = {0};
	int n = 0;
	if (L->Get_library_version(buf, &n) != 0) snprintf(buf, sizeof buf, "unknown MPI library");
	snprintf(msg, (size_t)cap, "%s", buf);
}

static inline float bf16_widen(uint16_t h) {
	uint32_t b = (uint32_t)h << 16;
	float f;
	memcpy(&f, &b, sizeof f);
	return f;
}

// bf16_round is nn/ref.BF16Bits: to the nearest, ties to even, on the bits;
// NaN stays a quiet NaN of the same sign.
static inline uint16_t bf16_round(float f) {
	uint32_t b;
	memcpy(&b, &f, sizeof b);
	if ((b & 0x7fffffffu) > 0x7f800000u) return (uint16_t)(((b >> 16) & 0x8000u) | 0x7fc0u);
	return (uint16_t)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}

void mm_sum_ranks_bf16(uint16_t *out, const uint16_t *const *in, int nin, size_t n) {
	enum { BLOCK = 4096 };
	float acc[BLOCK];
	for (size_t lo = 0; lo < n; lo += BLOCK) {
		size_t m = n - lo < BLOCK ? n - lo : BLOCK;
		const uint16_t *a = in[0] + lo;
		for (size_t i = 0; i < m; i++) acc[i] = bf16_widen(a[i]);
		for (int k = 1; k < nin; k++) {
			const uint16_t *c = in[k] + lo;
			for (size_t i = 0; i < m; i++) acc[i] = acc[i] + bf16_widen(c[i]);
		}
		uint16_t *o = out + lo;
		for (size_t i = 0; i < m; i++) o[i] = bf16_round(acc[i]);
	}
}
