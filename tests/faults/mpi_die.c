/* tests/faults/mpi_die.c — an LD_PRELOAD shim that makes one rank of an MPI job die in the
 * middle of training: the rank whose OMPI_COMM_WORLD_RANK is $LATHE_DIE_RANK, at its
 * $LATHE_DIE_AFTER-th MPI_Allreduce (1 = the first), kills itself with SIGKILL
 * (LATHE_DIE_HOW=kill, the default: a crash, an OOM kill) or leaves with _exit(3)
 * (LATHE_DIE_HOW=exit: a process that quits without MPI_Finalize). The other ranks are
 * untouched, except that with $LATHE_SLOW_FSYNC_MS every fsync() of a regular file, on every
 * rank, first sleeps that long: a file write is then still under way when the launcher ends
 * the job.
 * Used by tests/mpi_faults.sh.
 *   mpicc -shared -fPIC tests/faults/mpi_die.c -o mpi_die.so -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <mpi.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static long calls;

static void maybe_die(void) {
  const char *rank = getenv("OMPI_COMM_WORLD_RANK"), *who = getenv("LATHE_DIE_RANK");
  const char *after = getenv("LATHE_DIE_AFTER"), *how = getenv("LATHE_DIE_HOW");
  if (!rank || !who || strcmp(rank, who) != 0) return;
  if (++calls < (after ? atol(after) : 1)) return;
  if (how && strcmp(how, "exit") == 0) _exit(3);
  raise(SIGKILL);
}

int fsync(int fd) {
  static int (*real)(int);
  if (!real) *(void **)&real = dlsym(RTLD_NEXT, "fsync");
  const char *ms = getenv("LATHE_SLOW_FSYNC_MS");
  struct stat st;
  if (ms && atol(ms) > 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
    usleep((useconds_t)(atol(ms) * 1000));
  return real(fd);
}

int MPI_Allreduce(const void *send, void *recv, int count, MPI_Datatype type, MPI_Op op,
                  MPI_Comm comm) {
  static int (*real)(const void *, void *, int, MPI_Datatype, MPI_Op, MPI_Comm);
  if (!real) *(void **)&real = dlsym(RTLD_NEXT, "MPI_Allreduce");
  maybe_die();
  return real(send, recv, count, type, op, comm);
}
