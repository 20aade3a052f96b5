/* SIGINT/SIGTERM for the training commands; see cli_stop.h. */
#include "cli/cli_stop.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Set by the handler; the one piece of process-wide state signals need. */
static volatile sig_atomic_t stop_signal;
static char second_msg[128];

static void on_signal(int sig) {
  if (stop_signal) {
    ssize_t w = write(2, second_msg, strlen(second_msg));
    (void)w;
    _exit(128 + sig);
  }
  stop_signal = sig;
}

volatile sig_atomic_t *cli_stop_install(const char *prog) {
  /* formatted now: the handler may only write() */
  snprintf(second_msg, sizeof second_msg, "\n%.60s: second signal, stopping now without saving\n",
           prog);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  return &stop_signal;
}
