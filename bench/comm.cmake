add_executable(bench_comm bench_comm.cpp)
target_link_libraries(bench_comm PRIVATE pc_dist)
target_compile_options(bench_comm PRIVATE ${PC_WARNINGS})
target_precompile_headers(bench_comm REUSE_FROM pc_pch)
