# Slurm training test: the real trainer (2 ranks, mpirun) under slurm/train.sbatch on a real
# single-node Slurm (tests/slurm/start.sh installs and starts it; needs root and apt-get),
# stopped twice by `scancel --signal=USR1 --batch` and once by preemption, requeued and
# resumed each time; its model.h5 must equal an uninterrupted run's, byte for byte.
# Exit 77 = skipped (not root, or Slurm unavailable). ~1.5-3 min; serial because it may
# start/stop the cluster and keeps the CPUs busy.
add_test(NAME slurm_train COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/slurm/test_slurm_train.sh
  $<TARGET_FILE:pyramidclip> ${PROJECT_SOURCE_DIR})
set_tests_properties(slurm_train PROPERTIES SKIP_RETURN_CODE 77 LABELS slurm TIMEOUT 600 RUN_SERIAL TRUE)
