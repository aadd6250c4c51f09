pc_test(loss TORCH SOURCES test_loss.cpp DEPS pc_loss)
pc_test(loss_mpi MPI TORCH SOURCES test_loss_mpi.cpp DEPS pc_loss)
