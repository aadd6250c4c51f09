add_executable(bench_data bench_data.cpp)
target_link_libraries(bench_data PRIVATE pc_data benchmark::benchmark)
target_precompile_headers(bench_data REUSE_FROM pc_pch)
