/* One fuzz input through the VITA sample reader (JSON array or JSON lines) from memory: every
 * item is read or skipped with a reason and a message, the reader always moves forward, and
 * it ends. Shared by the libFuzzer target and the corpus replay; returns 0 when it behaved. */
#ifndef VT_JSONL_FUZZ_ONE_H
#define VT_JSONL_FUZZ_ONE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/sample.h"

static int jsonl_fuzz_one(const uint8_t *data, size_t size) {
  sample_config cfg;
  sample_config_default(&cfg);
  cfg.check_media = false; /* paths come from the input: never stat them */
  sample_set set = {.name = (char *)"demo", .folder = {(char *)"/img", NULL, NULL}};
  cfg.sets = &set;
  cfg.n_sets = 1;
  sample_reader *r;
  char err[512] = "";
  if (sample_reader_open_mem(&r, "fuzz.jsonl", (const char *)data, size, err, sizeof err))
    return err[0] ? 0 : 1;
  int bad = 0, rc;
  size_t items = 0, last_done = 0;
  sample s;
  sample_reason why;
  while ((rc = sample_reader_next(r, &cfg, &s, &why, err, sizeof err)) != 0) {
    size_t done, total;
    sample_reader_progress(r, &done, &total);
    if (done < last_done || done > total || total != size) bad = 1;
    last_done = done;
    if (++items > size + 2) { /* every item consumes at least one byte */
      bad = 1;
      break;
    }
    if (rc == 1) {
      /* a conversation, or a speech sample: a text and 1 to codec_vocab ids below 1024 */
      bool speech = s.text && s.n_codec > 0 && s.n_turns == 0;
      if (why != SAMPLE_OK || (s.n_turns == 0 && !speech)) bad = 1;
      if (s.text && (strlen(s.text) == 0 || strlen(s.text) > size)) bad = 1;
      for (size_t i = 0; i < s.n_codec; i++)
        if (s.codec[i] < 0 || s.codec[i] >= cfg.codec_vocab) bad = 1;
      for (size_t i = 0; i < s.n_turns; i++)
        if (!s.turns[i].value || strlen(s.turns[i].value) > size) bad = 1;
      if (s.inserted_id < -1 || (s.inserted_id >= 0 && (size_t)s.inserted_id >= s.n_turns)) bad = 1;
      sample_free(&s);
    } else if (rc != 2 || why == SAMPLE_OK || why >= SAMPLE_N_REASONS || !err[0] || !s.id[0]) {
      bad = 1;
    }
    err[0] = 0;
  }
  sample_reader_close(r);
  return bad;
}

#endif
