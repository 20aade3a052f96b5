/* Table-driven argument parsing and help for the `vita` subcommands. */
#include "train/cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int opt_count(const vt_cmd *cmd) {
  int n = 0;
  while (cmd->opts && cmd->opts[n].name) n++;
  return n;
}

static int opt_index(const vt_cmd *cmd, const char *name, size_t len) {
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

static const char *kind_name(vt_opt_kind k) {
  switch (k) {
  case VT_OPT_INT: return "INT";
  case VT_OPT_FLOAT: return "FLOAT";
  case VT_OPT_STR: return "STR";
  default: return "";
  }
}

int vt_cli_parse(const vt_cmd *cmd, int argc, char **argv, vt_args *out, bool *want_help, char *err,
                 size_t err_len) {
  memset(out, 0, sizeof *out);
  out->cmd = cmd;
  *want_help = false;
  int n_opts = opt_count(cmd);
  if (n_opts > VT_CLI_MAX_OPTS) abort(); /* table too large: a bug in the program */
  for (int i = 0; i < n_opts; i++) out->values[i] = cmd->opts[i].def;
  bool only_positional = false;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!only_positional && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
      *want_help = true;
      return VT_EXIT_OK;
    }
    if (!only_positional && strcmp(a, "--") == 0) {
      only_positional = true;
      continue;
    }
    if (only_positional || a[0] != '-' || a[1] == '\0') {
      if (out->n_positional >= VT_CLI_MAX_POSITIONAL || !cmd->positional) {
        snprintf(err, err_len, "vita %s: unexpected argument '%s'", cmd->name, a);
        return VT_EXIT_USAGE;
      }
      out->positional[out->n_positional++] = a;
      continue;
    }
    if (a[1] != '-') {
      snprintf(err, err_len, "vita %s: unknown flag '%s' (flags are --long-names; see --help)",
               cmd->name, a);
      return VT_EXIT_USAGE;
    }
    const char *name = a + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    int k = opt_index(cmd, name, len);
    if (k < 0) {
      snprintf(err, err_len, "vita %s: unknown flag '--%.*s' (see vita %s --help)", cmd->name,
               (int)len, name, cmd->name);
      return VT_EXIT_USAGE;
    }
    const vt_opt *o = &cmd->opts[k];
    const char *val;
    if (o->kind == VT_OPT_FLAG) {
      if (eq) {
        snprintf(err, err_len, "vita %s: flag '--%s' takes no value", cmd->name, o->name);
        return VT_EXIT_USAGE;
      }
      val = "1";
    } else if (eq) {
      val = eq + 1;
    } else {
      if (i + 1 >= argc) {
        snprintf(err, err_len, "vita %s: flag '--%s' needs a %s value", cmd->name, o->name,
                 kind_name(o->kind));
        return VT_EXIT_USAGE;
      }
      val = argv[++i];
    }
    int64_t iv;
    double fv;
    if ((o->kind == VT_OPT_INT && !parse_int(val, &iv)) ||
        (o->kind == VT_OPT_FLOAT && !parse_float(val, &fv))) {
      snprintf(err, err_len, "vita %s: flag '--%s' expects %s, got '%s'", cmd->name, o->name,
               o->kind == VT_OPT_INT ? "an integer" : "a finite number", val);
      return VT_EXIT_USAGE;
    }
    out->values[k] = val;
    out->given[k] = true;
  }
  return VT_EXIT_OK;
}

void vt_cli_print_cmd_help(FILE *f, const vt_cmd *cmd) {
  fprintf(f, "usage: vita %s [options]%s%s\n\n%s\n", cmd->name, cmd->positional ? " " : "",
          cmd->positional ? cmd->positional : "", cmd->summary);
  if (!cmd->opts || !cmd->opts[0].name) return;
  fprintf(f, "\noptions:\n");
  for (int i = 0; cmd->opts[i].name; i++) {
    const vt_opt *o = &cmd->opts[i];
    char lhs[64];
    snprintf(lhs, sizeof lhs, "--%s%s%s", o->name, o->kind == VT_OPT_FLAG ? "" : " ",
             kind_name(o->kind));
    fprintf(f, "  %-26s %s", lhs, o->help);
    if (o->def && o->kind != VT_OPT_FLAG) fprintf(f, " (default: %s)", o->def);
    fprintf(f, "\n");
  }
  fprintf(f, "  %-26s %s\n", "--help", "show this help");
}

void vt_cli_print_help(FILE *f, const vt_cmd *const *cmds, int n_cmds) {
  fprintf(f, "usage: vita COMMAND [options]\n\n"
             "vita-train: training and fine-tuning of VITA-style omni models.\n\ncommands:\n");
  for (int i = 0; i < n_cmds; i++) fprintf(f, "  %-12s %s\n", cmds[i]->name, cmds[i]->summary);
  fprintf(f, "\nRun 'vita COMMAND --help' for the options of one command.\n");
}

int vt_cli_main(const vt_cmd *const *cmds, int n_cmds, int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
      strcmp(argv[1], "help") == 0) {
    vt_cli_print_help(argc < 2 ? stderr : stdout, cmds, n_cmds);
    return argc < 2 ? VT_EXIT_USAGE : VT_EXIT_OK;
  }
  for (int i = 0; i < n_cmds; i++) {
    if (strcmp(argv[1], cmds[i]->name) != 0) continue;
    vt_args args;
    bool help;
    char err[512];
    if (vt_cli_parse(cmds[i], argc - 2, argv + 2, &args, &help, err, sizeof err)) {
      fprintf(stderr, "%s\n", err);
      return VT_EXIT_USAGE;
    }
    if (help) {
      vt_cli_print_cmd_help(stdout, cmds[i]);
      return VT_EXIT_OK;
    }
    return cmds[i]->run(&args);
  }
  fprintf(stderr, "vita: unknown command '%s' (see vita --help)\n", argv[1]);
  return VT_EXIT_USAGE;
}

static int must_index(const vt_args *a, const char *name) {
  int k = opt_index(a->cmd, name, strlen(name));
  if (k < 0) {
    fprintf(stderr, "vita %s: internal error: option '%s' is not in the table\n", a->cmd->name,
            name);
    abort();
  }
  return k;
}

int64_t vt_args_int(const vt_args *a, const char *name) {
  int64_t v = 0;
  const char *s = a->values[must_index(a, name)];
  if (s) parse_int(s, &v);
  return v;
}

double vt_args_float(const vt_args *a, const char *name) {
  double v = 0;
  const char *s = a->values[must_index(a, name)];
  if (s) parse_float(s, &v);
  return v;
}

const char *vt_args_str(const vt_args *a, const char *name) {
  return a->values[must_index(a, name)];
}

bool vt_args_flag(const vt_args *a, const char *name) {
  const char *s = a->values[must_index(a, name)];
  return s && strcmp(s, "1") == 0;
}

bool vt_args_given(const vt_args *a, const char *name) { return a->given[must_index(a, name)]; }

const char *vt_group_digits(int64_t v, char *buf, size_t len) {
  char digits[32];
  int n = snprintf(digits, sizeof digits, "%lld", (long long)v), o = 0;
  for (int i = 0; i < n && (size_t)o + 2 < len; i++) {
    if (i && (n - i) % 3 == 0 && digits[i - 1] != '-') buf[o++] = ',';
    buf[o++] = digits[i];
  }
  buf[o] = '\0';
  return buf;
}
