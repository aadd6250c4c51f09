pc_test(dist_comm MPI TORCH SOURCES test_dist_comm.cpp DEPS pc_dist)
pc_test(dist_buckets MPI TORCH SOURCES test_grad_buckets.cpp DEPS pc_dist)
if(TARGET nccl_link_check)  # CUDA toolkit + NCCL but a CPU LibTorch: the NCCL code links and loads
  add_test(NAME nccl_link_check COMMAND nccl_link_check)
endif()
