pc_test(ckpt TORCH SOURCES test_ckpt.cpp DEPS pc_ckpt)
