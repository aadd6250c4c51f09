pc_test(run TORCH SOURCES test_grad_cache.cpp DEPS pc_run)
