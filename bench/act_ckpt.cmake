# Activation checkpointing: peak activation memory and step time with and without (issue #4).
add_executable(bench_act_ckpt bench_act_ckpt.cpp)
target_link_libraries(bench_act_ckpt PRIVATE pc_model)
target_compile_options(bench_act_ckpt PRIVATE ${PC_WARNINGS})
target_precompile_headers(bench_act_ckpt REUSE_FROM pc_pch)
