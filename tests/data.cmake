pc_test(data TORCH
  SOURCES test_data_codec.cpp test_data_shards.cpp test_data_synth.cpp test_data_augment.cpp test_data_loader.cpp
          test_data_streams.cpp
  DEPS pc_data)
# The exactly-once resume check with real ranks: saved on 2, resumed on 1 and on 2.
pc_test(data_mpi MPI TORCH SOURCES test_data_mpi.cpp DEPS pc_data)
