pc_test(run TORCH SOURCES test_grad_cache.cpp test_large_block_cache.cpp DEPS pc_run)
pc_test(resume_controller SOURCES test_resume_controller.cpp DEPS pc_run)
