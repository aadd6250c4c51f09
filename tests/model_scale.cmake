# Scale-out model features (issue #4): activation checkpointing, SyncBN, mixed precision.
pc_test(model_scale TORCH SOURCES test_act_ckpt.cpp test_sync_bn.cpp test_mixed_precision.cpp DEPS pc_model)
pc_test(model_scale_mpi MPI TORCH SOURCES test_sync_bn_mpi.cpp DEPS pc_model)
