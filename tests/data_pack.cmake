pc_test(data_pack TORCH CLI SOURCES test_data_pack.cpp DEPS pc_data)
