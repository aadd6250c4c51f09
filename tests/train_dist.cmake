pc_test(train_dist MPI TORCH SOURCES test_train_dist.cpp DEPS pc_run)
