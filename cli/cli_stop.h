/* The stop request of the training commands (`vita train`, `vita curriculum`): the first
 * SIGINT/SIGTERM sets a flag the trainer checks between micro-batches (it saves a checkpoint
 * and returns); a second one exits at once (checkpoints are written atomically, so none is
 * left half). */
#ifndef VT_CLI_STOP_H
#define VT_CLI_STOP_H

#include <signal.h>

/* Installs the handlers; prog names the command in the second signal's message. Returns the
 * flag (0, or the signal number once one arrived). */
volatile sig_atomic_t *cli_stop_install(const char *prog);

#endif
