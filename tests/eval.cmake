# Evaluation: metrics on constructed embeddings, pair tables, task specs, SVG (fast, in-process);
# the sweep through the real binary on a run directory of tiny checkpoints.
pc_test(eval TORCH SOURCES test_eval.cpp DEPS pc_eval)
pc_test(sweep TORCH CLI SOURCES test_sweep.cpp DEPS pc_eval pc_ckpt)
