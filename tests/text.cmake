pc_test(text SOURCES test_tokenizer.cpp DEPS pc_text)
