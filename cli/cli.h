/* The `vita` command-line layer: each subcommand is a cli_cmd with a table of options.
 * The same table drives parsing, validation and the generated --help text, so help can
 * never drift from what the parser accepts. Subcommands live in cli/cmd_*.c. */
#ifndef VT_CLI_H
#define VT_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define CLI_MAX_OPTS 48
#define CLI_MAX_POSITIONAL 16

typedef enum { CLI_OPT_FLAG, CLI_OPT_INT, CLI_OPT_FLOAT, CLI_OPT_STR } cli_opt_kind;

typedef struct {
  const char *name; /* long name without the dashes, e.g. "steps" */
  cli_opt_kind kind;
  const char *def; /* default value as text; NULL = no default (STR) / false (FLAG) */
  const char *help;
} cli_opt;

typedef struct cli_args cli_args;

typedef struct {
  const char *name;
  const char *summary;              /* one line for `vita --help` */
  const char *positional;           /* usage text for positional arguments, NULL if none */
  const cli_opt *opts;              /* terminated by an entry with name == NULL */
  int (*run)(const cli_args *args); /* returns an exit code: 0 ok, 1 failure, 2 usage */
} cli_cmd;

struct cli_args {
  const cli_cmd *cmd;
  const char *values[CLI_MAX_OPTS]; /* parsed value or default, per option */
  bool given[CLI_MAX_OPTS];
  const char *positional[CLI_MAX_POSITIONAL];
  int n_positional;
};

/* Exit codes shared by all subcommands. */
enum { CLI_EXIT_OK = 0, CLI_EXIT_FAIL = 1, CLI_EXIT_USAGE = 2 };

/* Parses argv (after the subcommand name). Returns CLI_EXIT_OK, or CLI_EXIT_USAGE with a
 * message in err naming the offending flag. "--help" sets *want_help. */
int cli_parse(const cli_cmd *cmd, int argc, char **argv, cli_args *out, bool *want_help, char *err,
              size_t err_len);
void cli_print_cmd_help(FILE *f, const cli_cmd *cmd);
void cli_print_help(FILE *f, const cli_cmd *const *cmds, int n_cmds);
/* Runs the tool: argv[1] selects the subcommand. */
int cli_main(const cli_cmd *const *cmds, int n_cmds, int argc, char **argv);

/* Typed accessors; the name must be in the command's table (abort otherwise: a bug). */
int64_t cli_args_int(const cli_args *a, const char *name);
double cli_args_float(const cli_args *a, const char *name);
const char *cli_args_str(const cli_args *a, const char *name); /* NULL when unset */
bool cli_args_flag(const cli_args *a, const char *name);
bool cli_args_given(const cli_args *a, const char *name);

#endif
