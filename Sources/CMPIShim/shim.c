/*
 * CMPIShim implementation: one-to-one wrappers over MPI on MPI_COMM_WORLD.
 *
 * Thread level: we request MPI_THREAD_SERIALIZED, not FUNNELED. The training loop issues
 * collectives from one thread at a time, but with Swift concurrency that thread need not
 * be the process's main thread (FUNNELED would require exactly the thread that called
 * MPI_Init). MULTIPLE is not needed and would make Open MPI take locks on every call.
 * The one exception is the watchdog thread, which may call MPI_Abort while the training
 * thread is stuck inside a collective. Strictly that is concurrent use; we accept it
 * because MPI_Abort is terminal (nothing runs after it) and Open MPI's abort path tells
 * the runtime to kill the job without going through the communication progress engine.
 * The DistributedTests abort test exercises exactly this case.
 */
#include "CMPIShim.h"

#include <mpi.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t chunk_elements = CMPI_DEFAULT_CHUNK_ELEMENTS;
/* The arrival notices' own communicator (a duplicate of COMM_WORLD, made in cmpi_init: MPI_Comm_dup is collective). */
static MPI_Comm arrival_comm = MPI_COMM_NULL;
static int64_t collective_calls = 0;

/* Largest count per MPI call: the test hook value, never above MPI's int range. */
static int64_t chunk_limit(void) {
    int64_t n = chunk_elements;
    return (n <= 0 || n > CMPI_DEFAULT_CHUNK_ELEMENTS) ? CMPI_DEFAULT_CHUNK_ELEMENTS : n;
}

static int is_live(void) {
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    return init && !fin;
}

static int to_cmpi_level(int level) {
    if (level == MPI_THREAD_MULTIPLE) return CMPI_THREAD_MULTIPLE;
    if (level == MPI_THREAD_SERIALIZED) return CMPI_THREAD_SERIALIZED;
    if (level == MPI_THREAD_FUNNELED) return CMPI_THREAD_FUNNELED;
    return CMPI_THREAD_SINGLE;
}

/*
 * Open MPI's TCP transport (btl tcp) sends large messages by an emulated RDMA put by default. Between two hosts that
 * both send at once, as every rank of a 2-rank ring all-reduce does, that reached only 55-60% of the link in each
 * direction: 574 of 959 Mbit/s at 1 Gbit/s and 105 of 192 at 200 Mbit/s, whether the all-reduce was ours or
 * MPI_Allreduce, with larger socket buffers, deeper ob1 pipelines or 1 MiB fragments alike. With plain
 * send/receive (the flags without put) it reached 937 and 181 (docs/distributed.md section 8.7, Open MPI 4.1.4,
 * Scripts/netns-cluster). Three hosts were at the link rate either way (933). Only unshaped veths, which are
 * bound by copying rather than by a link, were faster with put (16.8 against 11.6 Gbit/s, still above 10 GbE).
 * The user's own setting (OMPI_MCA_btl_tcp_flags in the environment, or mpirun --mca btl_tcp_flags, which mpirun
 * passes on the same way) wins; one in an MCA parameter file (openmpi-mca-params.conf) does not, the environment
 * ranks above it. Transports other than TCP (UCX, verbs, shared memory) do not read it. cmpi_init runs before the
 * process starts other threads (setenv is not safe against a concurrent getenv).
 */
const char *cmpi_tcp_flags_default(void) {
#ifdef OMPI_MAJOR_VERSION
    return "send,inplace,need-ack,need-csum";
#else
    return NULL;
#endif
}

static int tcp_flags_set_by_init = 0;

int cmpi_tcp_flags_set_by_init(void) { return tcp_flags_set_by_init; }

int cmpi_cvar_read_integer(const char *name, long long *value) {
    int provided, rc, index, count, len = 256, dlen = 0, verbosity, bind, scope, size;
    char cname[256];
    MPI_Datatype type;
    MPI_T_enum enumtype;
    MPI_T_cvar_handle handle;
    unsigned char buf[16] = {0};
    rc = MPI_T_init_thread(MPI_THREAD_SINGLE, &provided);
    if (rc != MPI_SUCCESS) return rc;
    rc = MPI_T_cvar_get_index(name, &index);
    if (rc == MPI_SUCCESS)
        rc = MPI_T_cvar_get_info(index, cname, &len, &verbosity, &type, &enumtype, NULL, &dlen, &bind, &scope);
    if (rc == MPI_SUCCESS) rc = MPI_T_cvar_handle_alloc(index, NULL, &handle, &count);
    if (rc == MPI_SUCCESS) {
        if (count == 1 && MPI_Type_size(type, &size) == MPI_SUCCESS && (size == 4 || size == 8)) {
            rc = MPI_T_cvar_read(handle, buf);
            if (rc == MPI_SUCCESS) {
                if (size == 4) {
                    int32_t v;
                    memcpy(&v, buf, 4);
                    *value = (type == MPI_UNSIGNED) ? (long long)(uint32_t)v : (long long)v;
                } else {
                    int64_t v;
                    memcpy(&v, buf, 8);
                    *value = (long long)v;
                }
            }
        } else {
            rc = MPI_ERR_TYPE;
        }
        MPI_T_cvar_handle_free(&handle);
    }
    MPI_T_finalize();
    return rc;
}

int cmpi_init(int *provided) {
    int init = 0, fin = 0, level = MPI_THREAD_SINGLE, rc;
    MPI_Finalized(&fin);
    if (fin) return CMPI_ERR_FINALIZED;
    MPI_Initialized(&init);
    if (init) {
        rc = MPI_Query_thread(&level);
    } else {
        const char *flags = cmpi_tcp_flags_default();
        if (flags && !getenv("OMPI_MCA_btl_tcp_flags")) { /* the user's value stays */
            setenv("OMPI_MCA_btl_tcp_flags", flags, 1);
            tcp_flags_set_by_init = 1;
        }
        rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &level);
    }
    if (rc != MPI_SUCCESS) return rc;
    /* Errors come back as codes (turned into Swift errors) instead of killing the job
     * inside MPI with no context; the caller decides to abort, with a rank-tagged log. */
    rc = MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (rc != MPI_SUCCESS) return rc;
    if (arrival_comm == MPI_COMM_NULL) {
        rc = MPI_Comm_dup(MPI_COMM_WORLD, &arrival_comm);
        if (rc != MPI_SUCCESS) return rc;
    }
    if (provided) *provided = to_cmpi_level(level);
    /* MPI_THREAD_* values are ordered SINGLE < FUNNELED < SERIALIZED < MULTIPLE. */
    return level < MPI_THREAD_SERIALIZED ? CMPI_ERR_THREAD_LEVEL : MPI_SUCCESS;
}

int cmpi_finalize(void) {
    if (!is_live()) return MPI_SUCCESS;
    return MPI_Finalize();
}

int cmpi_initialized(void) {
    int flag = 0;
    MPI_Initialized(&flag);
    return flag;
}

int cmpi_finalized(void) {
    int flag = 0;
    MPI_Finalized(&flag);
    return flag;
}

int cmpi_rank(int *out) {
    if (!is_live()) return CMPI_ERR_NOT_INIT;
    return MPI_Comm_rank(MPI_COMM_WORLD, out);
}

int cmpi_size(int *out) {
    if (!is_live()) return CMPI_ERR_NOT_INIT;
    return MPI_Comm_size(MPI_COMM_WORLD, out);
}

/* Shared argument check for (buffer, count) pairs. */
static int check_args(const void *buf, int64_t count) {
    if (!is_live()) return CMPI_ERR_NOT_INIT;
    if (count < 0 || (count > 0 && buf == NULL)) return CMPI_ERR_ARG;
    return MPI_SUCCESS;
}

static int reduce_scatter_allgather(void *buf, int64_t n, int bf16);
static int64_t ring_min_elements = CMPI_RING_MIN_ELEMENTS;

int64_t cmpi_set_split_allreduce_min(int64_t n) {
    int64_t old = ring_min_elements;
    ring_min_elements = n;
    return old;
}

/* MPI counts are int: loop over chunks of at most chunk_limit() elements. A float32 chunk of at least
 * CMPI_RING_MIN_ELEMENTS goes as a reduce-scatter then an all-gather (the two halves of a ring all-reduce): Open MPI
 * 4.1's own choice of all-reduce algorithm for such sizes reached 30% of a 200 Mbit/s TCP link at 3 ranks, the two
 * halves 95% (docs/distributed.md §8.7). Every rank still gets the same values (each block is reduced once, on its
 * owner, then copied). */
static int allreduce_sum(void *buf, int64_t count, MPI_Datatype type, size_t elem_size) {
    int rc = check_args(buf, count);
    if (rc != MPI_SUCCESS) return rc;
    const int64_t chunk = chunk_limit();
    int size = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    char *p = (char *)buf;
    for (int64_t done = 0; done < count; done += chunk) {
        int64_t n = count - done < chunk ? count - done : chunk;
        if (type == MPI_FLOAT && size > 1 && n >= ring_min_elements) {
            rc = reduce_scatter_allgather(p + done * (int64_t)elem_size, n, 0);
        } else {
            collective_calls++;
            rc = MPI_Allreduce(MPI_IN_PLACE, p + done * (int64_t)elem_size, (int)n, type, MPI_SUM, MPI_COMM_WORLD);
        }
        if (rc != MPI_SUCCESS) return rc;
    }
    return MPI_SUCCESS;
}

int cmpi_allreduce_sum_float(float *buf, int64_t count) {
    return allreduce_sum(buf, count, MPI_FLOAT, sizeof(float));
}

int cmpi_allreduce_sum_double(double *buf, int64_t count) {
    return allreduce_sum(buf, count, MPI_DOUBLE, sizeof(double));
}

/* bfloat16: the top 16 bits of an IEEE float32. Rounded to nearest even; NaN stays NaN. */
static inline float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* MPI user op: inout[i] = bf16(f32(in[i]) + f32(inout[i])): each pairwise sum in float32, rounded once. */
static void bf16_sum(void *in, void *inout, int *len, MPI_Datatype *type) {
    (void)type;
    const uint16_t *a = (const uint16_t *)in;
    uint16_t *b = (uint16_t *)inout;
    for (int i = 0; i < *len; i++) b[i] = f32_to_bf16(bf16_to_f32(a[i]) + bf16_to_f32(b[i]));
}

static MPI_Op bf16_sum_op = MPI_OP_NULL;

int cmpi_allreduce_sum_bf16(uint16_t *buf, int64_t count) {
    int rc = check_args(buf, count);
    if (rc != MPI_SUCCESS) return rc;
    if (bf16_sum_op == MPI_OP_NULL) {
        rc = MPI_Op_create(bf16_sum, 1, &bf16_sum_op);
        if (rc != MPI_SUCCESS) return rc;
    }
    const int64_t chunk = chunk_limit();
    int size = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    for (int64_t done = 0; done < count; done += chunk) {
        int64_t n = count - done < chunk ? count - done : chunk;
        if (size > 1 && n >= ring_min_elements) {
            rc = reduce_scatter_allgather(buf + done, n, 1);  /* as the float32 path, above */
        } else {
            collective_calls++;
            rc = MPI_Allreduce(MPI_IN_PLACE, buf + done, (int)n, MPI_UINT16_T, bf16_sum_op, MPI_COMM_WORLD);
        }
        if (rc != MPI_SUCCESS) return rc;
    }
    return MPI_SUCCESS;
}

void cmpi_float_to_bf16(const float *src, uint16_t *dst, int64_t count) {
    for (int64_t i = 0; i < count; i++) dst[i] = f32_to_bf16(src[i]);
}

void cmpi_bf16_to_float(const uint16_t *src, float *dst, int64_t count) {
    for (int64_t i = 0; i < count; i++) dst[i] = bf16_to_f32(src[i]);
}

int cmpi_bcast_bytes(void *buf, int64_t nbytes, int root) {
    int rc = check_args(buf, nbytes);
    if (rc != MPI_SUCCESS) return rc;
    const int64_t chunk = chunk_limit();
    char *p = (char *)buf;
    /* Zero bytes still makes one call so an invalid root is reported on every rank. */
    int64_t done = 0;
    do {
        int64_t n = nbytes - done < chunk ? nbytes - done : chunk;
        collective_calls++;
        rc = MPI_Bcast(p + done, (int)n, MPI_BYTE, root, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return rc;
        done += n;
    } while (done < nbytes);
    return MPI_SUCCESS;
}

/*
 * Gather/allgather receive one block per rank, so a block larger than the chunk limit
 * cannot be split into a loop of calls without a staging copy. Instead describe one block
 * as a single derived datatype: `q` contiguous chunks followed by `r` bytes, sent with
 * count 1. Its extent is exactly nbytes, so blocks land back to back in rank order.
 */
static int block_type(int64_t nbytes, MPI_Datatype *type, int *count, int *derived) {
    const int64_t chunk = chunk_limit();
    *derived = 0;
    if (nbytes <= chunk) {
        *type = MPI_BYTE;
        *count = (int)nbytes;
        return MPI_SUCCESS;
    }
    int64_t q = nbytes / chunk, r = nbytes % chunk;
    if (q > (int64_t)0x7fffffff) return CMPI_ERR_COUNT;
    MPI_Datatype tchunk, tbig;
    int rc = MPI_Type_contiguous((int)chunk, MPI_BYTE, &tchunk);
    if (rc != MPI_SUCCESS) return rc;
    rc = MPI_Type_contiguous((int)q, tchunk, &tbig);
    MPI_Type_free(&tchunk); /* safe: derived types keep what they were built from */
    if (rc != MPI_SUCCESS) return rc;
    if (r == 0) {
        *type = tbig;
    } else {
        int lens[2] = {1, (int)r};
        MPI_Aint displs[2] = {0, (MPI_Aint)(q * chunk)};
        MPI_Datatype types[2] = {tbig, MPI_BYTE};
        rc = MPI_Type_create_struct(2, lens, displs, types, type);
        MPI_Type_free(&tbig);
        if (rc != MPI_SUCCESS) return rc;
    }
    rc = MPI_Type_commit(type);
    if (rc != MPI_SUCCESS) {
        MPI_Type_free(type);
        return rc;
    }
    *count = 1;
    *derived = 1;
    return MPI_SUCCESS;
}

static int gather_common(const void *send, void *recv, int64_t nbytes_each, int root, int all) {
    int rc = check_args(send, nbytes_each);
    if (rc != MPI_SUCCESS) return rc;
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (nbytes_each > 0 && recv == NULL && (all || rank == root)) return CMPI_ERR_ARG;
    MPI_Datatype type;
    int count = 0, derived = 0;
    rc = block_type(nbytes_each, &type, &count, &derived);
    if (rc != MPI_SUCCESS) return rc;
    collective_calls++;
    if (all) {
        rc = MPI_Allgather(send, count, type, recv, count, type, MPI_COMM_WORLD);
    } else {
        rc = MPI_Gather(send, count, type, recv, count, type, root, MPI_COMM_WORLD);
    }
    if (derived) MPI_Type_free(&type);
    return rc;
}

int cmpi_gather_bytes(const void *send, void *recv, int64_t nbytes_each, int root) {
    return gather_common(send, recv, nbytes_each, root, 0);
}

int cmpi_allgather_bytes(const void *send, void *recv, int64_t nbytes_each) {
    return gather_common(send, recv, nbytes_each, 0, 1);
}

/* counts (int64, one per rank) as MPI's int counts and displacements; false when a block exceeds INT_MAX. */
static int block_counts(const int64_t *counts, int n, int *icounts, int *displs) {
    int64_t at = 0;
    for (int r = 0; r < n; r++) {
        if (counts[r] < 0 || counts[r] > 0x7fffffff || at > 0x7fffffff) return 0;
        icounts[r] = (int)counts[r];
        displs[r] = (int)at;
        at += counts[r];
    }
    return 1;
}

/* --- The ring over point-to-point messages, waited on asleep.
 * Why: a blocking collective spins in Open MPI's progress loop for as long as the transfer takes, and the training
 * step's communication thread runs beside its compute thread: spinning, it takes a core from the compute while the
 * bytes are on the wire (2 ranks on 2 vCPUs over an emulated 1 Gbit/s link: the compute slowed by 0.2-0.3 s per
 * 1.2 s step, docs/distributed.md §8.7). Open MPI 4.1's nonblocking collectives were tried and moved 40% fewer
 * bytes per second; its point-to-point messages reach the line rate. So the reduce-scatter and the all-gather are
 * the ring's N − 1 steps each, every step an MPI_Irecv and an MPI_Isend tested every poll_us microseconds, asleep
 * in between (the kernel keeps moving the bytes through the socket buffers meanwhile). F2W_MPI_POLL_US=0 selects
 * MPI's own blocking MPI_Reduce_scatter and MPI_Allgatherv instead. */
static atomic_long poll_us = -1; /* read from the environment once; any thread may ask first */
enum { RING_TAG = 0x7247 };

static long poll_interval_us(void) {
    long us = atomic_load(&poll_us);
    if (us < 0) {
        const char *e = getenv("F2W_MPI_POLL_US");
        long v = e ? strtol(e, NULL, 10) : 50;
        us = v < 0 ? 0 : (v > 100000 ? 100000 : v);
        atomic_store(&poll_us, us);
    }
    return us;
}

/* Why relaxed polling: every test wakes this thread on the core where the training thread computes (one core per
 * rank), and at 50 µs the wake-ups cost 20-25% of a core for as long as a transfer lasts (`bench allreduce`'s
 * allreduce_cpu_s: 0.06 s per 25 MB at 1 Gbit/s; 0.02 s at 1000 µs, for 10-15% less bandwidth). While the buckets
 * are hidden behind compute, that CPU is what the compute loses; once the training thread waits for them, speed is
 * what counts. docs/distributed.md §8.11. */
static atomic_int relaxed_polling = 0;
static atomic_long relaxed_us = -1;

/* F2W_MPI_RELAXED_POLL_US, between poll_us and 100 ms. A nap under way when the setting changes is not cut short. */
static long relaxed_interval_us(void) {
    long us = atomic_load(&relaxed_us);
    if (us < 0) {
        const char *e = getenv("F2W_MPI_RELAXED_POLL_US");
        long v = e ? strtol(e, NULL, 10) : 1000;
        us = v < poll_interval_us() ? poll_interval_us() : (v > 100000 ? 100000 : v);
        atomic_store(&relaxed_us, us);
    }
    return us;
}

void cmpi_set_relaxed_polling(int on) { atomic_store(&relaxed_polling, on ? 1 : 0); }

long cmpi_poll_interval_now_us(void) {
    return atomic_load(&relaxed_polling) ? relaxed_interval_us() : poll_interval_us();
}

/* Waits for both requests, testing every poll interval (relaxed or not, as it is at each test), asleep in between. */
static int wait_asleep(MPI_Request req[2]) {
    for (;;) {
        int done = 0;
        int rc = MPI_Testall(2, req, &done, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS || done) return rc;
        struct timespec nap = {0, cmpi_poll_interval_now_us() * 1000};
        nanosleep(&nap, NULL);
    }
}

/* One ring step: send `scount` elements at `send` to the next rank, receive `rcount` at `recv` from the previous. */
static int ring_step(const void *send, int scount, void *recv, int rcount, MPI_Datatype type, int next, int prev) {
    MPI_Request req[2];
    int rc = MPI_Irecv(recv, rcount, type, prev, RING_TAG, MPI_COMM_WORLD, &req[0]);
    if (rc != MPI_SUCCESS) return rc;
    rc = MPI_Isend(send, scount, type, next, RING_TAG, MPI_COMM_WORLD, &req[1]);
    if (rc != MPI_SUCCESS) {
        MPI_Cancel(&req[0]);
        MPI_Request_free(&req[0]);
        return rc;
    }
    return wait_asleep(req);
}

/* Rank r ends with the sum over ranks of block r (block b: icounts[b] elements at displs[b]). Block b is summed along
 * the ring from rank b + 1 to rank b, one path per block, so its sum does not depend on who computes it. */
static int ring_reduce_scatter(char *buf, const int *icounts, const int *displs, int bf16, int n, int r) {
    size_t es = bf16 ? 2 : 4;
    MPI_Datatype type = bf16 ? MPI_UINT16_T : MPI_FLOAT;
    int most = 0;
    for (int b = 0; b < n; b++) most = icounts[b] > most ? icounts[b] : most;
    void *tmp = malloc((size_t)(most > 0 ? most : 1) * es);
    if (tmp == NULL) return CMPI_ERR_ARG;
    int next = (r + 1) % n, prev = (r + n - 1) % n, rc = MPI_SUCCESS;
    for (int k = 0; k < n - 1 && rc == MPI_SUCCESS; k++) {
        int sb = ((r - k - 1) % n + 2 * n) % n; /* the partial sum passed on */
        int rb = ((r - k - 2) % n + 2 * n) % n; /* the partial sum that arrives, added to ours */
        rc = ring_step(buf + (size_t)displs[sb] * es, icounts[sb], tmp, icounts[rb], type, next, prev);
        if (rc != MPI_SUCCESS) break;
        if (bf16) {
            int len = icounts[rb];
            bf16_sum(tmp, buf + (size_t)displs[rb] * es, &len, NULL);
        } else {
            float *dst = (float *)(buf + (size_t)displs[rb] * es);
            const float *src = (const float *)tmp;
            for (int i = 0; i < icounts[rb]; i++) dst[i] = src[i] + dst[i];
        }
    }
    free(tmp);
    return rc;
}

/* Every rank ends with every block: block b starts on rank b and travels the ring. */
static int ring_allgather(char *buf, const int *icounts, const int *displs, size_t es, MPI_Datatype type, int n,
                          int r) {
    int next = (r + 1) % n, prev = (r + n - 1) % n;
    for (int k = 0; k < n - 1; k++) {
        int sb = ((r - k) % n + n) % n, rb = ((r - k - 1) % n + 2 * n) % n;
        int rc = ring_step(buf + (size_t)displs[sb] * es, icounts[sb], buf + (size_t)displs[rb] * es, icounts[rb],
                           type, next, prev);
        if (rc != MPI_SUCCESS) return rc;
    }
    return MPI_SUCCESS;
}

int cmpi_reduce_scatter_sum(void *buf, const int64_t *counts, int bf16) {
    if (!is_live()) return CMPI_ERR_NOT_INIT;
    int n = 0, rank = 0, rc;
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (counts == NULL || n < 1) return CMPI_ERR_ARG;
    int icounts[n], displs[n]; /* one int pair per rank, on the stack */
    if (!block_counts(counts, n, icounts, displs)) return CMPI_ERR_COUNT;
    if (buf == NULL && displs[n - 1] + (int64_t)icounts[n - 1] > 0) return CMPI_ERR_ARG;
    MPI_Datatype type = bf16 ? MPI_UINT16_T : MPI_FLOAT;
    MPI_Op op = MPI_SUM;
    if (bf16) {
        if (bf16_sum_op == MPI_OP_NULL) {
            rc = MPI_Op_create(bf16_sum, 1, &bf16_sum_op);
            if (rc != MPI_SUCCESS) return rc;
        }
        op = bf16_sum_op;
    }
    collective_calls++;
    if (poll_interval_us() > 0 && n > 1) return ring_reduce_scatter((char *)buf, icounts, displs, bf16, n, rank);
    /* in place, MPI puts this rank's reduced block at the start of buf: move it to its own offset */
    rc = MPI_Reduce_scatter(MPI_IN_PLACE, buf, icounts, type, op, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return rc;
    size_t esize = bf16 ? 2 : 4;
    if (displs[rank] > 0 && icounts[rank] > 0)
        memmove((char *)buf + (size_t)displs[rank] * esize, buf, (size_t)icounts[rank] * esize);
    return MPI_SUCCESS;
}

static int allgatherv_inplace(void *buf, const int64_t *counts, MPI_Datatype type) {
    if (!is_live()) return CMPI_ERR_NOT_INIT;
    int n = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    if (counts == NULL || n < 1) return CMPI_ERR_ARG;
    int icounts[n], displs[n]; /* one int pair per rank, on the stack */
    if (!block_counts(counts, n, icounts, displs)) return CMPI_ERR_COUNT;
    if (buf == NULL && displs[n - 1] + (int64_t)icounts[n - 1] > 0) return CMPI_ERR_ARG;
    collective_calls++;
    if (poll_interval_us() > 0 && n > 1) {
        int rank = 0;
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        return ring_allgather((char *)buf, icounts, displs, type == MPI_FLOAT ? 4 : 2, type, n, rank);
    }
    return MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, icounts, displs, type, MPI_COMM_WORLD);
}

int cmpi_allgatherv_float(float *buf, const int64_t *counts) { return allgatherv_inplace(buf, counts, MPI_FLOAT); }

/* An in-place all-reduce of n elements (n within MPI's int range) as reduce-scatter + all-gather, blocks of
 * ⌊n(r+1)/N⌋ − ⌊nr/N⌋ elements. */
static int reduce_scatter_allgather(void *buf, int64_t n, int bf16) {
    int size = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int64_t counts[size]; /* on the stack: one per rank */
    for (int r = 0; r < size; r++) counts[r] = n * (r + 1) / size - n * r / size;
    int rc = cmpi_reduce_scatter_sum(buf, counts, bf16);
    if (rc != MPI_SUCCESS) return rc;
    return allgatherv_inplace(buf, counts, bf16 ? MPI_UINT16_T : MPI_FLOAT);
}

int cmpi_gatherv_float(const float *send, float *recv, const int64_t *counts, int root) {
    if (!is_live()) return CMPI_ERR_NOT_INIT;
    int n = 0, rank = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (counts == NULL || n < 1 || root < 0 || root >= n) return CMPI_ERR_ARG;
    int icounts[n], displs[n];
    if (!block_counts(counts, n, icounts, displs)) return CMPI_ERR_COUNT;
    if ((send == NULL && icounts[rank] > 0) || (rank == root && recv == NULL)) return CMPI_ERR_ARG;
    collective_calls++;
    return MPI_Gatherv(send, icounts[rank], MPI_FLOAT, recv, icounts, displs, MPI_FLOAT, root, MPI_COMM_WORLD);
}

int cmpi_barrier(void) {
    if (!is_live()) return CMPI_ERR_NOT_INIT;
    collective_calls++;
    return MPI_Barrier(MPI_COMM_WORLD);
}

void cmpi_abort(int code) {
    if (is_live()) MPI_Abort(MPI_COMM_WORLD, code);
    /* Not initialized (or MPI_Abort returned): still never return to the caller. */
    fflush(NULL);
    _exit(code);
}

/* Copies src into buf (capacity cap), NUL-terminated; returns the length copied. */
static int copy_out(const char *src, char *buf, int cap) {
    if (buf == NULL || cap <= 0) return 0;
    size_t n = strlen(src);
    if (n > (size_t)cap - 1) n = (size_t)cap - 1;
    memcpy(buf, src, n);
    buf[n] = '\0';
    return (int)n;
}

static const char *shim_error_text(int code) {
    switch (code) {
    case CMPI_ERR_THREAD_LEVEL: return "CMPI: MPI does not provide MPI_THREAD_SERIALIZED";
    case CMPI_ERR_FINALIZED: return "CMPI: MPI is already finalized";
    case CMPI_ERR_NOT_INIT: return "CMPI: MPI is not initialized";
    case CMPI_ERR_ARG: return "CMPI: invalid argument";
    case CMPI_ERR_COUNT: return "CMPI: count too large for MPI";
    default: return NULL;
    }
}

int cmpi_error_string(int code, char *buf, int cap) {
    const char *own = shim_error_text(code);
    if (own) return copy_out(own, buf, cap);
    char text[MPI_MAX_ERROR_STRING + 1];
    int len = 0;
    /* Open MPI builds its error-string table in MPI_Init and frees it in MPI_Finalize. */
    if (!is_live()) {
        snprintf(text, sizeof text, "MPI error %d (no text: MPI is not running)", code);
    } else if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) {
        snprintf(text, sizeof text, "unknown MPI error %d", code);
    } else {
        text[len] = '\0';
    }
    return copy_out(text, buf, cap);
}

int cmpi_processor_name(char *buf, int cap) {
    if (!is_live()) return CMPI_ERR_NOT_INIT;
    char name[MPI_MAX_PROCESSOR_NAME + 1];
    int len = 0;
    int rc = MPI_Get_processor_name(name, &len);
    if (rc != MPI_SUCCESS) return rc;
    name[len] = '\0';
    copy_out(name, buf, cap);
    return MPI_SUCCESS;
}

int cmpi_library_version(char *buf, int cap) {
    char text[MPI_MAX_LIBRARY_VERSION_STRING + 1];
    int len = 0;
    if (MPI_Get_library_version(text, &len) != MPI_SUCCESS) return copy_out("unknown", buf, cap);
    text[len] = '\0';
    return copy_out(text, buf, cap);
}


int64_t cmpi_test_set_chunk_elements(int64_t n) {
    int64_t previous = chunk_elements;
    chunk_elements = n <= 0 ? CMPI_DEFAULT_CHUNK_ELEMENTS : n;
    return previous;
}

int64_t cmpi_test_collective_calls(void) { return collective_calls; }

/* ---- Arrival notices: who has reached the next collective (the stall inspector) ----
 * Before a watched collective every rank posts a one-integer notice to rank 0, and rank 0 posts one to every
 * rank, on a duplicate of COMM_WORLD (so these messages can never match anything else). The training thread
 * then polls with MPI_Test until it has what it needs (rank 0: every rank's notice; others: rank 0's), and can
 * say meanwhile which ranks have not arrived. Messages between two ranks on one communicator and tag arrive in
 * the order sent, so the k-th notice from a rank is its k-th arrival; the sequence number is carried to check
 * exactly that. One arrival is outstanding at a time, always from the thread that makes the collectives. */
static MPI_Request *arrival_req = NULL;   /* [0, size): receives (rank 0: from each rank; others: from 0); then sends */
static long long *arrival_in = NULL;
static long long arrival_out = 0;
static int arrival_n = 0, arrival_recvs = 0;

int cmpi_arrival_post(int64_t seq) {
    if (!is_live()) return CMPI_ERR_NOT_INIT;
    int rc, rank, size;
    if (arrival_comm == MPI_COMM_NULL) return CMPI_ERR_NOT_INIT;
    MPI_Comm_rank(arrival_comm, &rank);
    MPI_Comm_size(arrival_comm, &size);
    if (arrival_req == NULL) {
        arrival_req = calloc((size_t)(2 * size), sizeof(MPI_Request));
        arrival_in = calloc((size_t)size, sizeof(long long));
        if (!arrival_req || !arrival_in) return CMPI_ERR_ARG;
    }
    arrival_out = (long long)seq;
    arrival_n = 0;
    arrival_recvs = rank == 0 ? size : 1;
    for (int r = 0; r < arrival_recvs; r++) {
        arrival_in[r] = -1;
        if (rank == 0 && r == 0) { arrival_req[arrival_n++] = MPI_REQUEST_NULL; arrival_in[0] = seq; continue; }
        rc = MPI_Irecv(&arrival_in[r], 1, MPI_LONG_LONG, rank == 0 ? r : 0, 7, arrival_comm, &arrival_req[arrival_n++]);
        if (rc != MPI_SUCCESS) return rc;
    }
    if (rank == 0) {
        for (int r = 1; r < size; r++) {
            rc = MPI_Isend(&arrival_out, 1, MPI_LONG_LONG, r, 7, arrival_comm, &arrival_req[arrival_n++]);
            if (rc != MPI_SUCCESS) return rc;
        }
    } else {
        rc = MPI_Isend(&arrival_out, 1, MPI_LONG_LONG, 0, 7, arrival_comm, &arrival_req[arrival_n++]);
        if (rc != MPI_SUCCESS) return rc;
    }
    return MPI_SUCCESS;
}

int cmpi_arrival_test(int *done, int *arrived, int capacity) {
    if (!is_live() || arrival_req == NULL) return CMPI_ERR_NOT_INIT;
    int all = 1, rc;
    for (int i = 0; i < arrival_n; i++) {
        if (arrival_req[i] == MPI_REQUEST_NULL) continue;
        int flag = 0;
        rc = MPI_Test(&arrival_req[i], &flag, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return rc;
        if (!flag) all = 0;
    }
    for (int r = 0; r < arrival_recvs && r < capacity; r++) {
        arrived[r] = arrival_in[r] >= 0;
        if (arrival_in[r] >= 0 && arrival_in[r] != arrival_out) return CMPI_ERR_ARG;  /* out of step: a bug */
    }
    *done = all;
    return MPI_SUCCESS;
}
