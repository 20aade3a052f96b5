/* The `vita` binary: one entry point, subcommands from train/cmd_*.c. */
#include "train/cli.h"

extern const vt_cmd vt_cmd_demo;
extern const vt_cmd vt_cmd_eval;
extern const vt_cmd vt_cmd_gen_data;
extern const vt_cmd vt_cmd_export;
extern const vt_cmd vt_cmd_import;
extern const vt_cmd vt_cmd_info;
extern const vt_cmd vt_cmd_plot;
extern const vt_cmd vt_cmd_prep;
extern const vt_cmd vt_cmd_tokenize;
extern const vt_cmd vt_cmd_train;

/* In the order `vita --help` lists them: the common path first. */
// clang-format off
static const vt_cmd *const commands[] = {
    &vt_cmd_demo,
    &vt_cmd_train,
    &vt_cmd_eval,
    &vt_cmd_prep,
    &vt_cmd_import,
    &vt_cmd_export,
    &vt_cmd_info,
    &vt_cmd_plot,
    &vt_cmd_tokenize,
    &vt_cmd_gen_data,
};
// clang-format on

int main(int argc, char **argv) {
  return vt_cli_main(commands, (int)(sizeof commands / sizeof commands[0]), argc, argv);
}
