// The existing single-purpose Google Benchmark files, compiled into bench_suite as they are (their
// BENCHMARK_MAIN() becomes an unused function here; bench_suite_main.cpp has the main):
// bench_model.cpp (image / text / ROI towers of the tiny model, batch 64) and bench_data.cpp
// (synthetic data, JPEG decode, random-resized crop, the train loader end to end).
#define main bench_model_main
#include "bench_model.cpp"
#undef main
#define main bench_data_main
#include "bench_data.cpp"
#undef main
