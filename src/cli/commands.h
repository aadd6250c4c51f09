#pragma once
// One function per subcommand; argv[0] is the subcommand's name. Each returns the exit code.
namespace pc::cli {

int cmd_train(int argc, char** argv);
int cmd_eval(int argc, char** argv);
int cmd_sweep(int argc, char** argv);
int cmd_data_synth(int argc, char** argv);
int cmd_data_pack(int argc, char** argv);
int cmd_data_check(int argc, char** argv);
int cmd_model_info(int argc, char** argv);
int cmd_plan(int argc, char** argv);
int cmd_tokenize(int argc, char** argv);
int cmd_ckpt_info(int argc, char** argv);
int cmd_ckpt_verify(int argc, char** argv);
int cmd_ckpt_import(int argc, char** argv);
int cmd_ckpt_export(int argc, char** argv);

}  // namespace pc::cli
