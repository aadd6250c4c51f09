# Capacity planner: formulas, parameter counts against the real model (torch), the CLI.
pc_test(plan TORCH CLI SOURCES test_plan.cpp DEPS pc_plan pc_model pc_util nlohmann_json::nlohmann_json)
