# Checkpoint write throughput vs raw write + fsync, and async-save stall vs sync save (issue #5).
add_executable(bench_ckpt_write bench_ckpt_write.cpp)
target_link_libraries(bench_ckpt_write PRIVATE pc_run pc_ckpt)
target_compile_options(bench_ckpt_write PRIVATE ${PC_WARNINGS})
target_precompile_headers(bench_ckpt_write REUSE_FROM pc_pch)
