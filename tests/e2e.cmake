pc_test(e2e CLI SOURCES test_e2e.cpp DEPS pc_util nlohmann_json::nlohmann_json)
target_compile_definitions(test_e2e PRIVATE PC_MPIEXEC="${MPIEXEC_EXECUTABLE}")
set_tests_properties(e2e PROPERTIES LABELS mpi
  ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1")
