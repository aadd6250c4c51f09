pc_test(data TORCH
  SOURCES test_data_codec.cpp test_data_shards.cpp test_data_synth.cpp test_data_augment.cpp test_data_loader.cpp
  DEPS pc_data)
