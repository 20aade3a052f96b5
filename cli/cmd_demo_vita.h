/* The VITA half of `vita demo` (cmd_demo_vita.c): generated data, the tiny curriculum of
 * configs/tiny-vita, loss plots, exports and each stage's metric against chance. cli_demo_vita
 * reads the demo's options (out, configs, size, seed, scale, threads, resume). */
#ifndef VT_CLI_CMD_DEMO_VITA_H
#define VT_CLI_CMD_DEMO_VITA_H

#include "cli/cli.h"

int cli_demo_vita(const cli_args *a);

#endif
