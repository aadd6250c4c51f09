# PyTorch interop (issue #6): ckpt import / export and train --init against files written by Debian's
# python3-torch (tests/python/); skips when /usr/bin/python3 cannot import torch.
pc_test(interop TORCH CLI SOURCES test_interop.cpp DEPS pc_interop pc_model pc_util)
set_tests_properties(interop PROPERTIES
  ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1")
