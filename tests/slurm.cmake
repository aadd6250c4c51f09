# Slurm smoke test: slurm/train.sbatch's signal forwarding, requeue and preemption on a real
# single-node Slurm (tests/slurm/start.sh installs and starts it; needs root and apt-get).
# A fake trainer stands in for pyramidclip, so nothing needs building. Exit 77 = skipped
# (not root, or Slurm unavailable). ~50 s; serial because it may start/stop the cluster.
add_test(NAME slurm_smoke COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/slurm/test_slurm_smoke.sh ${PROJECT_SOURCE_DIR})
set_tests_properties(slurm_smoke PROPERTIES SKIP_RETURN_CODE 77 LABELS slurm TIMEOUT 400 RUN_SERIAL TRUE)
