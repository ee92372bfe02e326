/*
 * CMPIShim: the few MPI calls the trainer needs, as plain C functions.
 *
 * No MPI type (MPI_Comm, MPI_Datatype, ...) appears here, so Swift never imports <mpi.h>
 * handles (Open MPI's MPI_COMM_WORLD is a cast macro Swift cannot import). Everything
 * works on MPI_COMM_WORLD. Counts are int64_t; the shim splits them into MPI `int` counts.
 *
 * Return values: functions returning `int` return 0 (MPI_SUCCESS) or an error code, either
 * an MPI error code (COMM_WORLD uses MPI_ERRORS_RETURN after cmpi_init) or one of the
 * negative CMPI_ERR_* codes below. cmpi_error_string() describes both kinds.
 */
#ifndef CMPISHIM_H
#define CMPISHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Shim-level error codes (negative, so they never collide with MPI error classes). */
#define CMPI_ERR_THREAD_LEVEL (-1001) /* MPI gave less than MPI_THREAD_SERIALIZED */
#define CMPI_ERR_FINALIZED    (-1002) /* MPI already finalized: it cannot be initialized again */
#define CMPI_ERR_NOT_INIT     (-1003) /* call needs MPI initialized */
#define CMPI_ERR_ARG          (-1004) /* negative count, NULL buffer with count > 0, ... */
#define CMPI_ERR_COUNT        (-1005) /* a size does not fit MPI's int counts even after chunking */

/* Thread support levels, mirroring MPI_THREAD_* (whose values are implementation-defined). */
#define CMPI_THREAD_SINGLE     0
#define CMPI_THREAD_FUNNELED   1
#define CMPI_THREAD_SERIALIZED 2
#define CMPI_THREAD_MULTIPLE   3

/* Largest element count passed to one MPI call by the chunked operations (1<<30). */
#define CMPI_DEFAULT_CHUNK_ELEMENTS ((int64_t)1 << 30)

/*
 * Initializes MPI with MPI_Init_thread(MPI_THREAD_SERIALIZED) and sets MPI_ERRORS_RETURN on
 * COMM_WORLD. If MPI is already initialized, only checks the level and sets the handler.
 * `provided` (may be NULL) receives the CMPI_THREAD_* level granted.
 * Fails with CMPI_ERR_THREAD_LEVEL if the level granted is below SERIALIZED, and with
 * CMPI_ERR_FINALIZED after cmpi_finalize. Errors inside MPI_Init_thread itself abort the
 * process (MPI's default handler applies until init has succeeded). Before MPI_Init_thread it sets
 * OMPI_MCA_btl_tcp_flags to cmpi_tcp_flags_default() unless the environment already has it.
 */
int cmpi_init(int *provided);

/* The value cmpi_init gives Open MPI's OMPI_MCA_btl_tcp_flags when the environment has none (the TCP transport's
 * default flags without "put" and "hetero-rdma"; shim.c says why), or NULL where the MPI library is not Open MPI. */
const char *cmpi_tcp_flags_default(void);

/* 1 if cmpi_init set OMPI_MCA_btl_tcp_flags (the environment had none), else 0. */
int cmpi_tcp_flags_set_by_init(void);

/* Reads the MPI tool-interface control variable `name` (MPI_T_cvar_read), when it is one integer of 4 or 8 bytes;
 * e.g. Open MPI's "btl_tcp_flags" (a bit set) after cmpi_init. Returns MPI_SUCCESS or the MPI_T error (MPI_T_ERR_INVALID_NAME
 * if no such variable is registered). */
int cmpi_cvar_read_integer(const char *name, long long *value);

/* MPI_Finalize. A no-op returning 0 if MPI was never initialized or is already finalized. */
int cmpi_finalize(void);

/* 1 if MPI_Init has been called (even if finalized since), else 0. Callable any time. */
int cmpi_initialized(void);
/* 1 if MPI_Finalize has been called, else 0. Callable any time. */
int cmpi_finalized(void);

/* Rank in / size of COMM_WORLD, written to *out. */
int cmpi_rank(int *out);
int cmpi_size(int *out);

/* In-place sum over all ranks of `count` elements at `buf` (MPI_Allreduce with MPI_IN_PLACE).
 * Every rank must pass the same count. Chunked so no single call exceeds the chunk size. Float32 and bfloat16 chunks
 * of at least CMPI_RING_MIN_ELEMENTS go as MPI_Reduce_scatter then MPI_Allgatherv (shim.c says why). */
#define CMPI_RING_MIN_ELEMENTS (1 << 16)
/* Sets the smallest chunk that goes as reduce-scatter + all-gather (default CMPI_RING_MIN_ELEMENTS; INT64_MAX: never,
 * MPI_Allreduce always, for `bench allreduce`'s comparison). Returns the previous value. Not thread-safe. */
int64_t cmpi_set_split_allreduce_min(int64_t n);
int cmpi_allreduce_sum_float(float *buf, int64_t count);
int cmpi_allreduce_sum_double(double *buf, int64_t count);

/* Relaxed polling: while on (while a collective runs beside the training thread's compute and nobody waits for
 * it), the ring's point-to-point steps test their requests every
 * F2W_MPI_RELAXED_POLL_US microseconds (default 1000) instead of every F2W_MPI_POLL_US (default 50). Safe from any
 * thread. cmpi_poll_interval_now_us says which interval a ring step would nap now. */
void cmpi_set_relaxed_polling(int on);
long cmpi_poll_interval_now_us(void);

/* In-place sum of bfloat16 values (the top 16 bits of float32) with a user op that adds each pair in float32 and
 * rounds the sum to bfloat16 (nearest even): half the bytes of a float32 all-reduce. */
int cmpi_allreduce_sum_bf16(uint16_t *buf, int64_t count);

/* float32 <-> bfloat16 conversions as the op above does them (round to nearest even; NaN stays NaN). */
void cmpi_float_to_bf16(const float *src, uint16_t *dst, int64_t count);
void cmpi_bf16_to_float(const uint16_t *src, float *dst, int64_t count);

/* Broadcasts `nbytes` bytes at `buf` from `root` to every rank (same nbytes everywhere). */
int cmpi_bcast_bytes(void *buf, int64_t nbytes, int root);

/* Gathers `nbytes_each` bytes from every rank into `recv` at `root`, in rank order.
 * `recv` holds size * nbytes_each bytes at root and is ignored (may be NULL) elsewhere. */
int cmpi_gather_bytes(const void *send, void *recv, int64_t nbytes_each, int root);

/* Like cmpi_gather_bytes, but every rank receives all size * nbytes_each bytes. */
int cmpi_allgather_bytes(const void *send, void *recv, int64_t nbytes_each);

/* ZeRO-1 collectives over one bucket of `buf` elements split into per-rank blocks of `counts[r]` elements, back to back
 * in rank order (every rank passes the same counts; each at most INT_MAX, else CMPI_ERR_COUNT).
 * cmpi_reduce_scatter_sum: MPI_Reduce_scatter (sum) in place: afterwards this rank's block, at its own offset in `buf`,
 * holds the sum over all ranks of that block; the other blocks are left unspecified. `bf16` selects bfloat16 elements
 * (uint16, summed as cmpi_allreduce_sum_bf16 does) instead of float32.
 * cmpi_allgatherv_float: MPI_Allgatherv in place: every rank's block of `buf` is copied to every rank.
 * cmpi_gatherv_float: rank `root` receives every rank's `counts[r]` floats from `send`, back to back in rank order, in
 * `recv` (ignored elsewhere). */
int cmpi_reduce_scatter_sum(void *buf, const int64_t *counts, int bf16);
int cmpi_allgatherv_float(float *buf, const int64_t *counts);
int cmpi_gatherv_float(const float *send, float *recv, const int64_t *counts, int root);

int cmpi_barrier(void);

/* MPI_Abort(COMM_WORLD, code): brings down every rank of the job; mpirun exits with `code`.
 * Falls back to _exit(code) if MPI is not initialized or MPI_Abort returns.
 * May be called from any thread (see shim.c for why this is acceptable). Never returns. */
void cmpi_abort(int code) __attribute__((noreturn));

/* Writes a NUL-terminated description of `code` (an MPI or CMPI_ERR_* code) into `buf`,
 * truncated to `cap` bytes. Returns the length written (without the NUL). Callable any time;
 * MPI codes are only spelled out (MPI_Error_string) while MPI is initialized. */
int cmpi_error_string(int code, char *buf, int cap);

/* MPI_Get_processor_name (the host name) into `buf`, NUL-terminated and truncated to `cap`.
 * Returns 0 or an error code. */
int cmpi_processor_name(char *buf, int cap);

/* MPI_Get_library_version, e.g. "Open MPI v4.1.4, package: Debian OpenMPI, ...".
 * Callable before MPI_Init. Returns the length written. */
int cmpi_library_version(char *buf, int cap);


/* ---- Test hooks (not for production use; not thread-safe). ---- */

/* Sets the largest element count per MPI call for the chunked operations and returns the
 * previous value. n <= 0 restores CMPI_DEFAULT_CHUNK_ELEMENTS. All ranks must agree. */
int64_t cmpi_test_set_chunk_elements(int64_t n);

/* Number of MPI collective calls issued so far by this process (to check chunking). */
int64_t cmpi_test_collective_calls(void);

/* Stall inspector (see shim.c): posts this rank's arrival notice for the watched collective number `seq`
 * (the same sequence on every rank): to rank 0 from every other rank, and from rank 0 to every rank. */
int cmpi_arrival_post(int64_t seq);
/* Polls the posted notices without blocking. `*done` becomes 1 once this rank has what it waits for (rank 0:
 * every rank's notice; another rank: rank 0's). `arrived[r]` (r < capacity) is 1 for each rank heard from:
 * on rank 0 indexed by rank, elsewhere only arrived[0] (rank 0). CMPI_ERR_ARG if a notice carries another
 * sequence number (the ranks are out of step). */
int cmpi_arrival_test(int *done, int *arrived, int capacity);

#ifdef __cplusplus
}
#endif

#endif /* CMPISHIM_H */
