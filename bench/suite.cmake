# bench_suite: one Google Benchmark binary over the model, loss, collectives, optimizer, HDF5 and
# data pipeline (issue #7). Run it with bench/run_suite.sh (one process + mpirun -np 2 for the
# collectives, JSON into bench/results/suite.json).
file(GLOB PC_BENCH_SUITE_SRC CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/bench_suite_*.cpp)
add_executable(bench_suite ${PC_BENCH_SUITE_SRC})
target_link_libraries(bench_suite PRIVATE pc_run pc_loss pc_optim pc_model pc_data pc_text pc_dist benchmark::benchmark)
target_compile_options(bench_suite PRIVATE ${PC_WARNINGS})
target_precompile_headers(bench_suite REUSE_FROM pc_pch)
