pc_test(optim TORCH SOURCES test_flat_layout.cpp test_adamw_kernel.cpp DEPS pc_optim)
pc_test(optim_zero MPI TORCH SOURCES test_zero_adamw.cpp DEPS pc_optim)
