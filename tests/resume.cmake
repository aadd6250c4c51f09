# Checkpoint/resume end to end under mpirun: elastic 2->1->2, 20 SIGKILLs, damaged checkpoints.
pc_test(resume CLI SOURCES test_resume.cpp DEPS pc_util hdf5::hdf5_cpp hdf5::hdf5 nlohmann_json::nlohmann_json)
target_compile_definitions(test_resume PRIVATE PC_MPIEXEC="${MPIEXEC_EXECUTABLE}")
set_tests_properties(resume PROPERTIES LABELS mpi TIMEOUT 1200
  ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1")
