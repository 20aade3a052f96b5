/* Table-driven argument parsing and help for the `vita` subcommands. */
#include "cli/cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int opt_count(const cli_cmd *cmd) {
  int n = 0;
  while (cmd->opts && cmd->opts[n].name) n++;
  return n;
}

static int opt_index(const cli_cmd *cmd, const char *name, size_t len) {
  for (int i = 0; cmd->opts && cmd->opts[i].name; i++)
    if (strlen(cmd->opts[i].name) == len && strncmp(cmd->opts[i].name, name, len) == 0) return i;
  return -1;
}

static bool parse_int(const char *s, int64_t *v) {
  char *end;
  errno = 0;
  long long x = strtoll(s, &end, 10);
  if (errno || end == s || *end) return false;
  *v = x;
  return true;
}

static bool parse_float(const char *s, double *v) {
  char *end;
  errno = 0;
  double x = strtod(s, &end);
  if (errno || end == s || *end || !isfinite(x)) return false;
  *v = x;
  return true;
}

static const char *kind_name(cli_opt_kind k) {
  switch (k) {
  case CLI_OPT_INT: return "INT";
  case CLI_OPT_FLOAT: return "FLOAT";
  case CLI_OPT_STR: return "STR";
  default: return "";
  }
}

int cli_parse(const cli_cmd *cmd, int argc, char **argv, cli_args *out, bool *want_help, char *err,
              size_t err_len) {
  memset(out, 0, sizeof *out);
  out->cmd = cmd;
  *want_help = false;
  int n_opts = opt_count(cmd);
  if (n_opts > CLI_MAX_OPTS) abort(); /* table too large: a bug in the program */
  for (int i = 0; i < n_opts; i++) out->values[i] = cmd->opts[i].def;
  bool only_positional = false;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!only_positional && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
      *want_help = true;
      return CLI_EXIT_OK;
    }
    if (!only_positional && strcmp(a, "--") == 0) {
      only_positional = true;
      continue;
    }
    if (only_positional || a[0] != '-' || a[1] == '\0') {
      if (out->n_positional >= CLI_MAX_POSITIONAL || !cmd->positional) {
        snprintf(err, err_len, "vita %s: unexpected argument '%s'", cmd->name, a);
        return CLI_EXIT_USAGE;
      }
      out->positional[out->n_positional++] = a;
      continue;
    }
    if (a[1] != '-') {
      snprintf(err, err_len, "vita %s: unknown flag '%s' (flags are --long-names; see --help)",
               cmd->name, a);
      return CLI_EXIT_USAGE;
    }
    const char *name = a + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    int k = opt_index(cmd, name, len);
    if (k < 0) {
      snprintf(err, err_len, "vita %s: unknown flag '--%.*s' (see vita %s --help)", cmd->name,
               (int)len, name, cmd->name);
      return CLI_EXIT_USAGE;
    }
    const cli_opt *o = &cmd->opts[k];
    const char *val;
    if (o->kind == CLI_OPT_FLAG) {
      if (eq) {
        snprintf(err, err_len, "vita %s: flag '--%s' takes no value", cmd->name, o->name);
        return CLI_EXIT_USAGE;
      }
      val = "1";
    } else if (eq) {
      val = eq + 1;
    } else {
      if (i + 1 >= argc) {
        snprintf(err, err_len, "vita %s: flag '--%s' needs a %s value", cmd->name, o->name,
                 kind_name(o->kind));
        return CLI_EXIT_USAGE;
      }
      val = argv[++i];
    }
    int64_t iv = 0;
    double fv;
    if ((o->kind == CLI_OPT_INT && !parse_int(val, &iv)) ||
        (o->kind == CLI_OPT_FLOAT && !parse_float(val, &fv))) {
      snprintf(err, err_len, "vita %s: flag '--%s' expects %s, got '%s'", cmd->name, o->name,
               o->kind == CLI_OPT_INT ? "an integer" : "a finite number", val);
      return CLI_EXIT_USAGE;
    }
    /* no option of any command counts below zero: a negative --log-every, --max-len or seed
     * (which would wrap to 2^64 - 1) is refused here for all of them */
    if (o->kind == CLI_OPT_INT && iv < 0) {
      snprintf(err, err_len, "vita %s: flag '--%s' expects an integer >= 0, got '%s'", cmd->name,
               o->name, val);
      return CLI_EXIT_USAGE;
    }
    out->values[k] = val;
    out->given[k] = true;
  }
  return CLI_EXIT_OK;
}

void cli_print_cmd_help(FILE *f, const cli_cmd *cmd) {
  fprintf(f, "usage: vita %s [options]%s%s\n\n%s\n", cmd->name, cmd->positional ? " " : "",
          cmd->positional ? cmd->positional : "", cmd->summary);
  if (!cmd->opts || !cmd->opts[0].name) return;
  fprintf(f, "\noptions:\n");
  for (int i = 0; cmd->opts[i].name; i++) {
    const cli_opt *o = &cmd->opts[i];
    char lhs[64];
    snprintf(lhs, sizeof lhs, "--%s%s%s", o->name, o->kind == CLI_OPT_FLAG ? "" : " ",
             kind_name(o->kind));
    fprintf(f, "  %-26s %s", lhs, o->help);
    if (o->def && o->kind != CLI_OPT_FLAG) fprintf(f, " (default: %s)", o->def);
    fprintf(f, "\n");
  }
  fprintf(f, "  %-26s %s\n", "--help", "show this help");
}

void cli_print_help(FILE *f, const cli_cmd *const *cmds, int n_cmds) {
  fprintf(f, "usage: vita COMMAND [options]\n\n"
             "vita-train: training and fine-tuning of VITA-style omni models.\n\ncommands:\n");
  for (int i = 0; i < n_cmds; i++) fprintf(f, "  %-12s %s\n", cmds[i]->name, cmds[i]->summary);
  fprintf(f, "\nRun 'vita COMMAND --help' for the options of one command.\n");
}

int cli_main(const cli_cmd *const *cmds, int n_cmds, int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
      strcmp(argv[1], "help") == 0) {
    cli_print_help(argc < 2 ? stderr : stdout, cmds, n_cmds);
    return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
  }
  for (int i = 0; i < n_cmds; i++) {
    if (strcmp(argv[1], cmds[i]->name) != 0) continue;
    cli_args args;
    bool help;
    char err[512];
    if (cli_parse(cmds[i], argc - 2, argv + 2, &args, &help, err, sizeof err)) {
      fprintf(stderr, "%s\n", err);
      return CLI_EXIT_USAGE;
    }
    if (help) {
      cli_print_cmd_help(stdout, cmds[i]);
      return CLI_EXIT_OK;
    }
    return cmds[i]->run(&args);
  }
  fprintf(stderr, "vita: unknown command '%s' (see vita --help)\n", argv[1]);
  return CLI_EXIT_USAGE;
}

static int must_index(const cli_args *a, const char *name) {
  int k = opt_index(a->cmd, name, strlen(name));
  if (k < 0) {
    fprintf(stderr, "vita %s: internal error: option '%s' is not in the table\n", a->cmd->name,
            name);
    abort();
  }
  return k;
}

int64_t cli_args_int(const cli_args *a, const char *name) {
  int64_t v = 0;
  const char *s = a->values[must_index(a, name)];
  if (s) parse_int(s, &v);
  return v;
}

double cli_args_float(const cli_args *a, const char *name) {
  double v = 0;
  const char *s = a->values[must_index(a, name)];
  if (s) parse_float(s, &v);
  return v;
}

const char *cli_args_str(const cli_args *a, const char *name) {
  return a->values[must_index(a, name)];
}

bool cli_args_flag(const cli_args *a, const char *name) {
  const char *s = a->values[must_index(a, name)];
  return s && strcmp(s, "1") == 0;
}

bool cli_args_given(const cli_args *a, const char *name) { return a->given[must_index(a, name)]; }
