# tests/mpi/env.bash — sourced by the MPI tests (tests/mpi_*.sh, tests/prune_train.sh) after
# they set ROOT: `source "$ROOT/tests/mpi/env.bash" mpirun [mpicc]`.
# Each tool named must exist: Open MPI missing is a failure, never a skip
# (scripts/install-deps.sh installs openmpi-bin and libopenmpi-dev).
for tool in "$@"; do
  command -v "$tool" >/dev/null || {
    echo "FAIL: $tool not found: install openmpi-bin and libopenmpi-dev (scripts/install-deps.sh)"
    exit 1
  }
done
# root in a container, and more ranks than cores (2 ranks on a 1-core runner)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
MPIRUN="mpirun --oversubscribe"
# the sanitizer build: Open MPI's own allocations outlive MPI_Finalize (tests/lsan_mpi.supp);
# its plugins stay loaded and stacks are unwound fully so that the suppressions can match; a
# test's LD_PRELOAD shim may come before the ASan runtime
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$ROOT/tests/lsan_mpi.supp"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0:verify_asan_link_order=0"
export OMPI_MCA_mca_base_component_disable_dlclose=1 PMIX_MCA_mca_base_component_disable_dlclose=1
