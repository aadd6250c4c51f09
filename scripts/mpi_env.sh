# Sourced by the scripts: lets Open MPI run as root and oversubscribe small machines,
# and gives each rank one intra-op thread unless the user chose otherwise.
export OMPI_ALLOW_RUN_AS_ROOT=1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
