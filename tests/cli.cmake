pc_test(cli CLI SOURCES test_cli.cpp DEPS pc_util)
