/* cli/dist_mpi.c — `mpirun -np K lathe train ...`: the MPI transport of data-parallel training
 * (lathe_dist of lathe/train.h; the loop is the runtime's, docs/distributed.md).
 *
 * lathe runs data-parallel when started by an MPI launcher (its environment names the job:
 * OMPI_COMM_WORLD_SIZE under Open MPI, PMI_SIZE / PMIX_RANK under MPICH and PMIx launchers).
 * Built without MPI (CMake found none), such a start is a clear error instead. MPI's default
 * error handler stays: a rank that dies ends the job with MPI's own message (mpirun names the
 * rank and its signal or exit code, and ends the others with SIGTERM); each survivor says on
 * stderr that it was ended so (stop_handler), after finishing any file it was writing
 * (lathe_dist.hold around rank 0's writes).
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#ifdef LATHE_HAVE_MPI
#include <limits.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#endif

static bool under_launcher(void) {
  return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

#ifdef LATHE_HAVE_MPI

static bool started;
static char stop_text[256]; /* what a rank ended by the launcher says, formatted at the start */
static size_t stop_len;
static volatile sig_atomic_t holding; /* rank 0 is writing its files (lathe_dist.hold) */
static volatile sig_atomic_t pending; /* the signal that came meanwhile, or 0 */

/* says so on stderr and ends by sig's default action, so the exit status says which signal;
 * async-signal-safe */
static void stop_now(int sig) {
  ssize_t w = write(STDERR_FILENO, stop_text, stop_len);
  (void)w;
  signal(sig, SIG_DFL);
  raise(sig);
}

/* SIGTERM or SIGINT: the launcher ends the job (a rank died or failed, or the user interrupted
 * mpirun). It may run on any thread (Open MPI has its own), so a write in progress is
 * protected by a flag, not a signal mask: the signal waits for hold(ctx, 0). Open MPI sends
 * SIGKILL odls_base_sigkill_timeout (1 s) after SIGTERM: longer writes need a larger value. */
static void stop_handler(int sig) {
  if (holding) {
    pending = sig;
    return;
  }
  stop_now(sig);
}

static void hold(void *ctx, int on) {
  (void)ctx;
  holding = on != 0;
  if (!on && pending) stop_now(pending);
}

static void catch_stop(int rank, int size) {
  int n = snprintf(
      stop_text, sizeof stop_text,
      "lathe train: rank %d of %d ended by the MPI launcher (a rank died or failed, "
      "or the job was interrupted; mpirun says which); %s\n",
      rank, size, rank == 0 ? "every checkpoint on disk is a complete epoch" : "it wrote no files");
  stop_len = n > 0 && (size_t)n < sizeof stop_text ? (size_t)n : 0;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = stop_handler;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
}

/* MPI_Allreduce counts are int: a longer region goes in pieces */
static int sum(void *data, int64_t n, MPI_Datatype type, size_t size, char **error) {
  for (int64_t done = 0; done < n;) {
    int part = n - done > INT_MAX ? INT_MAX : (int)(n - done);
    int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)data + (size_t)done * size, part, type, MPI_SUM,
                           MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) {
      char text[MPI_MAX_ERROR_STRING] = "";
      int len = 0;
      MPI_Error_string(rc, text, &len);
      *error = strdup(text);
      return -1;
    }
    done += part;
  }
  return 0;
}

static int sum_f32(void *ctx, float *data, int64_t n, char **error) {
  (void)ctx;
  return sum(data, n, MPI_FLOAT, sizeof *data, error);
}

static int sum_f64(void *ctx, double *data, int64_t n, char **error) {
  (void)ctx;
  return sum(data, n, MPI_DOUBLE, sizeof *data, error);
}

/* the buckets' non-blocking sums of one step (lathe_dist.start and wait, --buckets) */
static MPI_Request *requests;
static int n_requests, cap_requests;

static int failed(int rc, char **error) {
  char text[MPI_MAX_ERROR_STRING] = "";
  int len = 0;
  MPI_Error_string(rc, text, &len);
  *error = strdup(text);
  return -1;
}

/* MPI_Iallreduce of the bucket, then MPI_Testall on those started: without an asynchronous
 * progress thread Open MPI moves non-blocking collectives forward only inside MPI calls */
static int start(void *ctx, void *data, int64_t n, int dtype, char **error) {
  (void)ctx;
  if (n > INT_MAX) return *error = strdup("a bucket of more than INT_MAX values"), -1;
  if (n_requests == cap_requests) {
    int cap = cap_requests ? 2 * cap_requests : 16;
    MPI_Request *grown = realloc(requests, (size_t)cap * sizeof *grown);
    if (!grown) return *error = strdup("out of memory"), -1;
    requests = grown, cap_requests = cap;
  }
  int rc = MPI_Iallreduce(MPI_IN_PLACE, data, (int)n, dtype == LATHE_F64 ? MPI_DOUBLE : MPI_FLOAT,
                          MPI_SUM, MPI_COMM_WORLD, &requests[n_requests]);
  if (rc != MPI_SUCCESS) return failed(rc, error);
  n_requests++;
  int done = 0;
  rc = MPI_Testall(n_requests, requests, &done, MPI_STATUSES_IGNORE);
  return rc == MPI_SUCCESS ? 0 : failed(rc, error);
}

static int wait_all(void *ctx, char **error) {
  (void)ctx;
  int rc = MPI_Waitall(n_requests, requests, MPI_STATUSES_IGNORE);
  n_requests = 0;
  return rc == MPI_SUCCESS ? 0 : failed(rc, error);
}

bool cli_dist_start(lathe_dist *dist, bool *active, Diag *d) {
  (void)d;
  memset(dist, 0, sizeof *dist);
  *active = under_launcher();
  if (!*active) return true;
  MPI_Init(NULL, NULL);
  started = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &dist->rank);
  MPI_Comm_size(MPI_COMM_WORLD, &dist->size);
  if (dist->size > 1) catch_stop(dist->rank, dist->size);
  dist->sum_f32 = sum_f32, dist->sum_f64 = sum_f64, dist->hold = hold;
  dist->start = start, dist->wait = wait_all;
  return true;
}

void cli_dist_stop(const lathe_dist *dist, bool failed) {
  if (!started) return;
  if (failed && dist->size > 1) MPI_Abort(MPI_COMM_WORLD, EXIT_USER); /* no rank waits forever */
  MPI_Finalize();
  free(requests), requests = NULL, n_requests = cap_requests = 0;
  started = false;
}

#else

bool cli_dist_start(lathe_dist *dist, bool *active, Diag *d) {
  memset(dist, 0, sizeof *dist);
  *active = false;
  if (!under_launcher()) return true;
  diag_error(d, (SrcLoc){0},
             "started by an MPI launcher, but this lathe was built without MPI: install "
             "openmpi-bin and libopenmpi-dev (scripts/install-deps.sh) and rebuild");
  return false;
}

void cli_dist_stop(const lathe_dist *dist, bool failed) {
  (void)dist, (void)failed;
}

#endif
