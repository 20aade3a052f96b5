/* The `vita` command-line layer: each subcommand is a vt_cmd with a table of options.
 * The same table drives parsing, validation and the generated --help text, so help can
 * never drift from what the parser accepts. Subcommands live in train/cmd_*.c. */
#ifndef VT_CLI_H
#define VT_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define VT_CLI_MAX_OPTS 48
#define VT_CLI_MAX_POSITIONAL 16

typedef enum { VT_OPT_FLAG, VT_OPT_INT, VT_OPT_FLOAT, VT_OPT_STR } vt_opt_kind;

typedef struct {
  const char *name; /* long name without the dashes, e.g. "steps" */
  vt_opt_kind kind;
  const char *def; /* default value as text; NULL = no default (STR) / false (FLAG) */
  const char *help;
} vt_opt;

typedef struct vt_args vt_args;

typedef struct {
  const char *name;
  const char *summary;             /* one line for `vita --help` */
  const char *positional;          /* usage text for positional arguments, NULL if none */
  const vt_opt *opts;              /* terminated by an entry with name == NULL */
  int (*run)(const vt_args *args); /* returns an exit code: 0 ok, 1 failure, 2 usage */
} vt_cmd;

struct vt_args {
  const vt_cmd *cmd;
  const char *values[VT_CLI_MAX_OPTS]; /* parsed value or default, per option */
  bool given[VT_CLI_MAX_OPTS];
  const char *positional[VT_CLI_MAX_POSITIONAL];
  int n_positional;
};

/* Exit codes shared by all subcommands. */
enum { VT_EXIT_OK = 0, VT_EXIT_FAIL = 1, VT_EXIT_USAGE = 2 };

/* Parses argv (after the subcommand name). Returns VT_EXIT_OK, or VT_EXIT_USAGE with a
 * message in err naming the offending flag. "--help" sets *want_help. */
int vt_cli_parse(const vt_cmd *cmd, int argc, char **argv, vt_args *out, bool *want_help, char *err,
                 size_t err_len);
void vt_cli_print_cmd_help(FILE *f, const vt_cmd *cmd);
void vt_cli_print_help(FILE *f, const vt_cmd *const *cmds, int n_cmds);
/* Runs the tool: argv[1] selects the subcommand. */
int vt_cli_main(const vt_cmd *const *cmds, int n_cmds, int argc, char **argv);

/* Typed accessors; the name must be in the command's table (abort otherwise: a bug). */
int64_t vt_args_int(const vt_args *a, const char *name);
double vt_args_float(const vt_args *a, const char *name);
const char *vt_args_str(const vt_args *a, const char *name); /* NULL when unset */
bool vt_args_flag(const vt_args *a, const char *name);
bool vt_args_given(const vt_args *a, const char *name);

/* 7615616512 -> "7,615,616,512" into buf; returns buf. For counts shown to people. */
const char *vt_group_digits(int64_t v, char *buf, size_t len);

#endif
