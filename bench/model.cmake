add_executable(bench_model bench_model.cpp)
target_link_libraries(bench_model PRIVATE pc_model benchmark::benchmark)
target_precompile_headers(bench_model REUSE_FROM pc_pch)
