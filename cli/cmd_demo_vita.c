/* `vita demo` (--kind vita, the default): the built-in job. It writes the generated VITA
 * dataset (data/vita_synth.h) to OUT/data, runs the tiny curriculum of configs/tiny-vita (stage
 * 0 standing in for the pretrained LLM, then 1.1 -> 3.1 (the codec), a prep step encoding
 * 3.2's pairs with that codec, and 3.2) through the curriculum runner with
 * the data paths pointed at OUT/data (OUT/curriculum.yaml, which `vita curriculum ... --resume`
 * continues), draws each stage's loss curve, exports the run in the VITA-1.5 release layout (with
 * the speech decoder), and ends with each stage's held-out metric next to its chance level. */
#define _XOPEN_SOURCE 700 /* realpath */
#include "cli/cmd_demo_vita.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoints/ckpt.h"
#include "cli/cli_codec.h"
#include "cli/cli_stop.h"
#include "data/vita_synth.h"
#include "stages/stage_release.h"
#include "train/curriculum.h"
#include "train/plot.h"
#include "train/trainer.h"

/* The tiny curriculum: stage config, training and held-out mixtures of the generated data,
 * the metric and its chance level ("json:KEY": chance.json's KEY; else as the curriculum
 * takes it: an eval metric's name, or start). A NULL config is the prep step after 3.1: 3.2's
 * pairs encoded with 3.1's codec. */
static const struct {
  const char *config, *mix, *eval, *metric, *chance, *says;
} stages[] = {
    {"0-llm", "vision", "caption-eval", "loss", "json:caption_loss", "caption loss, no image yet"},
    {"1.1", "caption", "caption-eval", "loss", "json:caption_loss", "caption loss"},
    {"1.2", "caption", "caption-eval", "loss", "json:caption_loss", "caption loss"},
    {"1.3", "vision", "qa-eval", "qa_acc", "json:qa_acc", "QA accuracy"},
    {"2.1a", "asr-ctc", "asr-ctc-eval", "cer", "json:asr_cer", "CER"},
    {"2.1b", "asr", "asr-eval", "gen_wer", "json:asr_wer", "WER, LLM's own transcript"},
    {"2.2", "omni", "sqa-eval", "qa_acc", "json:sqa_acc", "spoken-QA accuracy"},
    {"3.1", "speech", "speech-eval", "mel_l1", "start", "codec mel L1 (vs untrained)"},
    {NULL, NULL, NULL, NULL, NULL, "3.2 pairs as codec tokens"},
    {"3.2", "tts", "tts-eval", "token_acc", "unigram_acc", "speech-token accuracy"},
};
enum { N_STAGES = sizeof stages / sizeof stages[0], STAGE_QA = 3 };

/* The prep step: 3.2's text-speech pairs (the spoken captions) as the tokens of 3.1's codec. */
static void write_prep(FILE *f, const char *out) {
  fprintf(f,
          "  - prep: codec-tokens\n    codec: \"3.1\"\n    config: %s/data/prep.yaml\n"
          "    sets:\n",
          out);
  for (int s = 0; s < 2; s++)
    fprintf(f, "      - {input: %s/data/tts-%s.json, out: %s/data/shards/tts-%s}\n", out,
            s ? "eval" : "train", out, s ? "eval" : "train");
}

/* The step factor of stage name: its entry in per ("1.3=0.5,2.1a=1"; NULL: none), else scale.
 * -1 for a malformed list or a factor outside (0, 100]. */
static double stage_scale(const char *per, const char *name, double scale) {
  size_t n = strlen(name);
  for (const char *p = per; p && *p;) {
    const char *eq = strchr(p, '='), *comma = strchr(p, ',');
    if (!eq || (comma && comma < eq)) return -1;
    char *end;
    double f = strtod(eq + 1, &end);
    if (end == eq + 1 || (*end && *end != ',') || !(f > 0 && f <= 100)) return -1;
    if ((size_t)(eq - p) == n && !strncmp(p, name, n)) return f;
    p = *end ? end + 1 : end;
  }
  return scale;
}

static int write_curriculum(const char *path, const char *configs, const char *out, double scale,
                            const char *per_stage, char *err, size_t err_len) {
  FILE *f = fopen(path, "w");
  if (!f) {
    snprintf(err, err_len, "%s: cannot write: %s", path, strerror(errno));
    return -1;
  }
  fprintf(f,
          "# the curriculum `vita demo` runs: configs/tiny-vita's stages on %s/data\n"
          "#   vita curriculum %s --resume   continues it\nname: tiny-vita\n"
          "output: {dir: %s/run}\nsave_initial: true\nstages:\n",
          out, path, out);
  int rc = 0;
  for (int i = 0; i < N_STAGES && !rc; i++) {
    if (!stages[i].config) {
      write_prep(f, out);
      continue;
    }
    char stage_path[4300];
    snprintf(stage_path, sizeof stage_path, "%s/%s.yaml", configs, stages[i].config);
    fprintf(f,
            "  - config: %s\n    data.mixture: %s/data/mix/%s.yaml\n"
            "    data.eval_mixture: %s/data/mix/%s.yaml\n    metric: %s\n",
            stage_path, out, stages[i].mix, out, stages[i].eval, stages[i].metric);
    if (!strncmp(stages[i].chance, "json:", 5))
      fprintf(f, "    chance: %s/data/chance.json:%s\n", out, stages[i].chance + 5);
    else
      fprintf(f, "    chance: %s\n", stages[i].chance);
    if (!strcmp(stages[i].config, "3.1")) fprintf(f, "    from_previous: false\n");
    double k = stage_scale(per_stage, stages[i].config, scale);
    if (k < 0) {
      snprintf(err, err_len, "--stage-scale %s: expected STAGE=FACTOR,... with factors in (0, 100]",
               per_stage);
      rc = -1;
      break;
    }
    if (k != 1.0) { /* a shorter run (tests): the stage's steps scaled, evaluated at the end */
      static stage_cfg cfg; /* large: not on the stack */
      if (stage_config_load(&cfg, stage_path, err, err_len)) {
        rc = -1;
        break;
      }
      int64_t steps = (int64_t)ceil((double)cfg.steps * k);
      if (steps < 1) steps = 1;
      fprintf(f, "    train.steps: %lld\n    output.eval_every: %lld\n", (long long)steps,
              (long long)steps);
    }
  }
  if (fclose(f) && !rc) {
    snprintf(err, err_len, "%s: cannot write: %s", path, strerror(errno));
    rc = -1;
  }
  return rc;
}

/* Each stage's loss curve, RUN/<n>-<stage>/loss.png. */
static void plot_stages(const curriculum *cur) {
  char err[1024];
  for (int i = 0; i < cur->n_stages; i++) {
    if (!cur->stages[i].cfg) continue; /* a prep step */
    char metrics[4300], png[4300], title[160];
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", cur->stages[i].dir);
    snprintf(png, sizeof png, "%s/loss.png", cur->stages[i].dir);
    snprintf(title, sizeof title, "stage %d/%d %s: loss", i + 1, cur->n_stages,
             cur->stages[i].name);
    plot_opts o = {.smooth = 0.6, .title = title, .x_label = "step"};
    if (plot_metrics(metrics, "loss", png, &o, NULL, NULL, err, sizeof err))
      fprintf(stderr, "vita demo: plot: %s\n", err);
  }
}

/* The final checkpoint of stage i (stage.json's "checkpoint"), into buf; "" if none. */
static void final_checkpoint(const curriculum *cur, int i, char *buf, size_t len) {
  char path[4300];
  snprintf(path, sizeof path, "%s/stage.json", cur->stages[i].dir);
  json_t *j = json_load_file(path, 0, NULL);
  const char *ck = json_string_value(json_object_get(j, "checkpoint"));
  snprintf(buf, len, "%s", ck ? ck : "");
  json_decref(j);
}

/* The curriculum run -> the VITA-1.5 release layout (stages/stage_release.h): the LLM, tower,
 * projector and the audio encoder + adapter (trained in 2.1a-2.2) as bf16 shards with the
 * release's config.json and side directories, the tokenizer, and the speech decoder of 3.2 in
 * vita_tts_ckpt/decoder. */
static int export_release(const char *run, const char *dir, const char *tokenizer) {
  static char err[1 << 16];
  stage_release_opts ro = {
      .io = {.dtype = VT_BF16, .max_shard_bytes = (size_t)2e9, .tokenizer_dir = tokenizer}};
  stage_release_stats es;
  if (ckpt_remove_tree(dir, err, sizeof err) ||
      stage_release_export(run, dir, &ro, &es, err, sizeof err)) {
    fprintf(stderr, "vita demo: export: %s\n", err);
    return -1;
  }
  printf("demo: exported the curriculum to %s (VITA-1.5 release layout, bf16): %d tensors "
         "(LLM, vision%s)%s%s\n",
         dir, es.main.n_tensors, es.audio ? ", audio" : "",
         es.tts_done ? ", the speech decoder in " STAGE_RELEASE_TTS_DIR : "",
         es.codec_done ? ", the codec in " STAGE_RELEASE_CODEC_DIR : "");
  if (es.notes[0]) printf("%s", es.notes);
  return 0;
}

/* Stage 1.3's held-out accuracy per question type (the data's qa-eval-TYPE sets: each
 * held-out question alone) against chance.json's per-type chance (the most frequent training
 * answer of that type), printed and written to RUN/qa-per-type.json. */
static void qa_per_type(const curriculum *cur, const vt_dist *dist, const char *out) {
  static const char *const types[] = {"colour", "shape", "count", "position"};
  int i = STAGE_QA;
  char ck[4300], path[4300], err[2048];
  final_checkpoint(cur, i, ck, sizeof ck);
  snprintf(path, sizeof path, "%s/data/chance.json", out);
  json_t *chance = json_load_file(path, 0, NULL), *res = json_object();
  json_t *per = json_object_get(json_object_get(chance, "qa"), "per_type");
  printf("stage %s QA accuracy per question type (chance: the most frequent training answer):\n",
         cur->stages[i].name);
  for (size_t k = 0; ck[0] && k < sizeof types / sizeof *types; k++) {
    snprintf(path, sizeof path, "%s/data/mix/qa-eval-%s.yaml", out, types[k]);
    vt_eval_result r;
    if (vt_eval(cur->stages[i].cfg, ck, path, dist, &r, err, sizeof err)) {
      fprintf(stderr, "vita demo: per-type eval: %s\n", err);
      break;
    }
    json_t *p = json_object_get(per, types[k]);
    double n = json_number_value(json_object_get(p, "n"));
    double c = n > 0 ? json_number_value(json_object_get(p, "hit")) / n : NAN;
    double v = vt_eval_value(&r, "qa_acc");
    printf("  %-9s %6.4f  chance %6.4f  (%lld questions)\n", types[k], v, c, (long long)r.samples);
    json_object_set_new(res, types[k],
                        json_pack("{s:f, s:f, s:I}", "qa_acc", v, "chance", isfinite(c) ? c : -1.0,
                                  "n", (json_int_t)r.samples));
  }
  snprintf(path, sizeof path, "%s/run/qa-per-type.json", out);
  if (json_dump_file(res, path, JSON_INDENT(1) | JSON_PRESERVE_ORDER))
    fprintf(stderr, "vita demo: %s: cannot write\n", path);
  json_decref(res);
  json_decref(chance);
}

/* The table the demo ends with: each stage's metric against its chance level. */
static int report(const curriculum *cur, const char *out) {
  char path[4300];
  snprintf(path, sizeof path, "%s/run/curriculum.json", out);
  json_t *j = json_load_file(path, 0, NULL);
  json_t *rows = json_object_get(j, "stages");
  int beaten = 0;
  printf("\n%-12s %-27s %-10s %10s %10s  %s\n", "stage", "held-out metric", "name", "value",
         "chance", "beats chance");
  for (size_t i = 0; i < json_array_size(rows) && i < (size_t)cur->n_stages; i++) {
    json_t *row = json_array_get(rows, i), *ev = json_object_get(row, "eval");
    double v = json_number_value(json_object_get(ev, "value"));
    json_t *cj = json_object_get(ev, "chance");
    double c = json_is_number(cj) ? json_number_value(cj) : NAN;
    const char *name = json_string_value(json_object_get(ev, "metric"));
    bool lower = name && (!strcmp(name, "loss") || !strcmp(name, "cer") ||
                          !strcmp(name, "gen_wer") || !strcmp(name, "mel_l1"));
    bool ok = isfinite(v) && isfinite(c) && (lower ? v < c : v > c);
    if (!stages[i].config) { /* the prep step: every pair encoded, none skipped */
      json_t *all = json_object_get(row, "eval_all");
      c = json_number_value(json_object_get(all, "written")) +
          json_number_value(json_object_get(all, "skipped"));
      ok = v > 0 && v == c;
    }
    beaten += ok;
    printf("%-12s %-27s %-10s %10.4f %10.4f  %s\n", cur->stages[i].name, stages[i].says,
           name ? name : "-", v, c, ok ? "yes" : "no");
  }
  printf("demo: %d of %d stages beat chance (%s)\n", beaten, cur->n_stages, path);
  json_decref(j);
  return beaten;
}

int cli_demo_vita(const cli_args *a) {
  const char *out = cli_args_given(a, "out") ? cli_args_str(a, "out") : "runs/tiny-vita";
  char configs[4096];
  bool resume = cli_args_flag(a, "resume");
  double scale = cli_args_float(a, "scale");
  int64_t threads = cli_args_int(a, "threads");
  char err[4096], path[4300], abs_out[4096];
  if (!(scale > 0 && scale <= 100) || threads < 0) {
    fprintf(stderr, "vita demo: --scale must be in (0, 100] and --threads >= 0\n");
    return CLI_EXIT_USAGE;
  }
  /* the tiny model gains nothing from threads, and on a busy machine they wait on each other */
  if (threads > 0) omp_set_num_threads((int)threads);
  const char *cdir = cli_args_str(a, "configs");
  snprintf(path, sizeof path, "%s/0-llm.yaml", cdir);
  struct stat st;
  if (stat(path, &st) != 0 || !realpath(cdir, configs)) {
    fprintf(stderr,
            "vita demo: %s: not found (run from the repository root, or give --configs "
            "configs/tiny-vita)\n",
            path);
    return CLI_EXIT_FAIL;
  }
  if (ckpt_mkdirs(out, err, sizeof err) || !realpath(out, abs_out)) {
    fprintf(stderr, "vita demo: %s: %s\n", out, err[0] ? err : strerror(errno));
    return CLI_EXIT_FAIL;
  }
  /* 1. data (kept on --resume when complete) */
  snprintf(path, sizeof path, "%s/data/chance.json", abs_out);
  if (!resume || stat(path, &st) != 0) {
    vsynth_cfg vc;
    if (vsynth_defaults(cli_args_str(a, "size"), &vc)) {
      fprintf(stderr, "vita demo: --size: expected small or tiny\n");
      return CLI_EXIT_USAGE;
    }
    vc.seed = (uint64_t)cli_args_int(a, "seed");
    vsynth_stats vs;
    snprintf(path, sizeof path, "%s/data", abs_out);
    printf("demo: generating the dataset in %s (images, espeak-ng speech, shards)\n", path);
    fflush(stdout);
    if (ckpt_remove_tree(path, err, sizeof err) || vsynth_write(path, &vc, &vs, err, sizeof err)) {
      fprintf(stderr, "vita demo: %s\n", err);
      return CLI_EXIT_FAIL;
    }
    printf("demo: %lld images, %lld speech clips, a tokenizer of %d tokens; chance levels in "
           "%s/chance.json\n",
           (long long)vs.images, (long long)vs.clips, vs.vocab_size, path);
  }
  /* 2. the curriculum */
  char cur_path[4300];
  snprintf(cur_path, sizeof cur_path, "%s/curriculum.yaml", abs_out);
  if (write_curriculum(cur_path, configs, abs_out, scale, cli_args_str(a, "stage-scale"), err,
                       sizeof err)) {
    fprintf(stderr, "vita demo: %s\n", err);
    return CLI_EXIT_FAIL;
  }
  curriculum cur;
  if (curriculum_load(&cur, cur_path, NULL, err, sizeof err)) {
    fprintf(stderr, "vita demo: %s\n", err);
    return CLI_EXIT_FAIL;
  }
  vt_dist dist;
  if (vt_dist_init(&dist, NULL, NULL, err, sizeof err)) {
    fprintf(stderr, "vita demo: %s\n", err);
    curriculum_free(&cur);
    return CLI_EXIT_FAIL;
  }
  volatile sig_atomic_t *stop = cli_stop_install("vita demo");
  curriculum_opts co = {.cur = &cur,
                        .resume = resume,
                        .dist = &dist,
                        .console = stdout,
                        .stop = stop,
                        .codec_open = cli_codec_prep_open,
                        .codec_close = cli_codec_prep_close};
  curriculum_result r;
  int rc = CLI_EXIT_FAIL;
  if (curriculum_run(&co, &r, err, sizeof err)) {
    fprintf(stderr, "vita demo: stage %d/%d: %s\n", r.stage, cur.n_stages, err);
    goto done;
  }
  if (r.interrupted) {
    printf("demo: stopped in stage %d/%d; continue with: vita demo --resume\n", r.stage,
           cur.n_stages);
    rc = *stop ? 128 + *stop : CLI_EXIT_OK;
    goto done;
  }
  /* 3. plots and the release export of the whole run */
  plot_stages(&cur);
  char dir[4300], tok[4300], run[4300];
  snprintf(tok, sizeof tok, "%s/data/tokenizer", abs_out);
  snprintf(run, sizeof run, "%s/run", abs_out);
  snprintf(dir, sizeof dir, "%s/export", abs_out);
  if (export_release(run, dir, tok)) goto done;
  printf("demo: loss curves in %s/run/<n>-<stage>/loss.png\n", abs_out);
  qa_per_type(&cur, &dist, abs_out);
  report(&cur, abs_out);
  rc = CLI_EXIT_OK;
done:
  vt_dist_finalize(&dist);
  curriculum_free(&cur);
  return rc;
}
