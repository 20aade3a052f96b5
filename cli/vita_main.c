/* The `vita` binary: one entry point, subcommands from cli/cmd_*.c. */
#include "cli/cli.h"

#include <string.h>

extern const cli_cmd cli_cmd_cmvn;
extern const cli_cmd cli_cmd_codec;
extern const cli_cmd cli_cmd_curriculum;
extern const cli_cmd cli_cmd_speak;
extern const cli_cmd cli_cmd_demo;
extern const cli_cmd cli_cmd_eval;
extern const cli_cmd cli_cmd_gen_data;
extern const cli_cmd cli_cmd_embed;
extern const cli_cmd cli_cmd_export;
extern const cli_cmd cli_cmd_features;
extern const cli_cmd cli_cmd_import;
extern const cli_cmd cli_cmd_info;
extern const cli_cmd cli_cmd_plan;
extern const cli_cmd cli_cmd_plot;
extern const cli_cmd cli_cmd_prep;
extern const cli_cmd cli_cmd_tokenize;
extern const cli_cmd cli_cmd_train;

/* In the order `vita --help` lists them: the common path first. */
// clang-format off
static const cli_cmd *const commands[] = {
    &cli_cmd_demo,
    &cli_cmd_train,
    &cli_cmd_curriculum,
    &cli_cmd_eval,
    &cli_cmd_prep,
    &cli_cmd_import,
    &cli_cmd_export,
    &cli_cmd_info,
    &cli_cmd_plan,
    &cli_cmd_plot,
    &cli_cmd_tokenize,
    &cli_cmd_cmvn,
    &cli_cmd_features,
    &cli_cmd_embed,
    &cli_cmd_gen_data,
    &cli_cmd_codec,
    &cli_cmd_speak,
};
// clang-format on

int main(int argc, char **argv) {
  return cli_main(commands, (int)(sizeof commands / sizeof commands[0]), argc, argv);
}
