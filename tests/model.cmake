pc_test(model TORCH SOURCES test_model.cpp test_model_parts.cpp test_model_h5.cpp test_fused_attention.cpp test_fused_quick_gelu.cpp test_pooled_rows.cpp DEPS pc_model)
