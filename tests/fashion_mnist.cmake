pc_test(fashion_mnist TORCH CLI SOURCES test_fashion_mnist.cpp
  DEPS pc_data pc_model nlohmann_json::nlohmann_json ZLIB::ZLIB)
