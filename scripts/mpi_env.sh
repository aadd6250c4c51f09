# Sourced by the scripts: lets Open MPI run as root and oversubscribe small machines,
# and gives each rank one intra-op thread unless the user chose otherwise.
export OMPI_ALLOW_RUN_AS_ROOT=1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
# Spinning OpenMP workers stall whenever another thread wants the core (src/cli/blas_coretype.h).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
# OpenBLAS 0.3.21 misdetects recent Xeons (SSE3 kernels, ~2x slower): name the kernel family.
# (build/pyramidclip does this itself; the test binaries rely on this line.)
if [ -z "${OPENBLAS_CORETYPE+x}" ]; then
  if grep -qw avx512vl /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX
  elif grep -qw avx2 /proc/cpuinfo; then export OPENBLAS_CORETYPE=Haswell
  fi
fi
