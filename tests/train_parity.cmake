# The trainer end to end on 1 and 2 ranks (mpirun from inside the test): parameters after 50
# steps agree for ZeRO 0/1/2 and both ViT variants; bf16 tracks fp32.
pc_test(train_parity CLI SOURCES test_train_parity.cpp DEPS pc_util hdf5::hdf5_cpp hdf5::hdf5 nlohmann_json::nlohmann_json)
target_compile_definitions(test_train_parity PRIVATE PC_MPIEXEC="${MPIEXEC_EXECUTABLE}")
set_tests_properties(train_parity PROPERTIES LABELS mpi TIMEOUT 900
  ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1")
