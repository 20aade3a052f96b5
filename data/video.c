/* Video decoding and frame picking; see video.h. A file is read twice: once counting the video
 * stream's packets (no decoding) to know the frame count the rule needs, once decoding frames
 * in order and keeping the picked ones as RGB (swscale at the frame's own size). */
#include "data/video.h"
#include "autograd/fmt.h"

#include <dirent.h>
#include <errno.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static const char *const status_names[VID_N_STATUS] = {"ok",
                                                       "unreadable video",
                                                       "no video stream",
                                                       "video without frames",
                                                       "corrupt video",
                                                       "bad video frame"};

const char *vid_status_name(vid_status s) {
  return s >= 0 && s < VID_N_STATUS ? status_names[s] : "?";
}

vid_cfg vid_cfg_default(void) {
  return (vid_cfg){.rate = 1.0, .min_frames = 4, .max_frames = 16, .folder_fps = 1.0};
}

/* np.linspace(0, n - 1, num, dtype=int): i * step truncated, the last exactly n - 1. */
static void linspace_pick(const int64_t *pos, int64_t n, int num, int64_t *idx) {
  double step = num > 1 ? (double)(n - 1) / (num - 1) : 0.0;
  for (int i = 0; i < num; i++) {
    int64_t k = i == num - 1 && num > 1 ? n - 1 : (int64_t)((double)i * step);
    idx[i] = pos[k];
  }
}

int vid_pick_frames(int64_t n_frames, double fps, const vid_cfg *c, int64_t *idx) {
  if (n_frames <= 0) return 0;
  /* round() of Python 3 rounds halves to even: nearbyint in the default rounding mode */
  int64_t stride = (int64_t)nearbyint(fps / c->rate);
  if (stride < 1) stride = 1;
  int64_t n_pos = (n_frames - 1) / stride + 1;
  int64_t *pos = malloc((size_t)n_pos * sizeof *pos);
  if (!pos) return 0;
  for (int64_t i = 0; i < n_pos; i++) pos[i] = i * stride;
  int n;
  if (n_pos > c->max_frames) {
    n = c->max_frames;
    linspace_pick(pos, n_pos, n, idx);
  } else if (n_pos < c->min_frames) {
    n = c->min_frames;
    linspace_pick(pos, n_pos, n, idx);
  } else {
    n = (int)n_pos;
    memcpy(idx, pos, (size_t)n * sizeof *idx);
  }
  free(pos);
  return n;
}

void vid_frames_free(vid_frames *v) {
  if (!v) return;
  for (int i = 0; i < v->n; i++) img_free(&v->frames[i]);
  free(v->frames);
  free(v->index);
  free(v->times);
  memset(v, 0, sizeof *v);
}

static int frames_alloc(vid_frames *v, int n) {
  v->frames = calloc((size_t)n, sizeof *v->frames);
  v->index = calloc((size_t)n, sizeof *v->index);
  v->times = calloc((size_t)n, sizeof *v->times);
  v->n = n;
  return v->frames && v->index && v->times ? 0 : -1;
}

#define FAIL(st, ...)                                                                              \
  do {                                                                                             \
    vt_seterr(err, err_len, __VA_ARGS__);                                                          \
    rc = st;                                                                                       \
    goto done;                                                                                     \
  } while (0)

/* ---- a folder of frame images ------------------------------------------------------------ */

static bool is_image_name(const char *n) {
  const char *dot = strrchr(n, '.');
  if (!dot || n[0] == '.') return false;
  static const char *const ext[] = {".jpg", ".jpeg", ".png", ".bmp", ".gif"};
  for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
    if (!strcasecmp(dot, ext[i])) return true;
  return false;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static vid_status decode_folder(const char *path, const vid_cfg *c, vid_frames *out, char *err,
                                size_t err_len) {
  vid_status rc = VID_OK;
  char **names = NULL;
  size_t n = 0, cap = 0;
  int64_t idx[256];
  DIR *d = opendir(path);
  if (!d) FAIL(VID_UNREADABLE, "%s: cannot open the frame folder: %s", path, strerror(errno));
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!is_image_name(e->d_name)) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      char **nn = realloc(names, cap * sizeof *nn);
      if (!nn) FAIL(VID_UNREADABLE, "%s: out of memory listing frames", path);
      names = nn;
    }
    if (!(names[n] = strdup(e->d_name))) FAIL(VID_UNREADABLE, "%s: out of memory", path);
    n++;
  }
  if (!n)
    FAIL(VID_NO_FRAMES, "%s: a folder without frame images (.jpg .jpeg .png .bmp .gif)", path);
  qsort(names, n, sizeof *names, cmp_str);
  int k = vid_pick_frames((int64_t)n, c->folder_fps, c, idx);
  if (frames_alloc(out, k)) FAIL(VID_UNREADABLE, "%s: out of memory", path);
  out->fps = c->folder_fps;
  out->n_total = (int64_t)n;
  for (int i = 0; i < k; i++) {
    char file[8192], why[1024];
    snprintf(file, sizeof file, "%s/%s", path, names[idx[i]]);
    img_status st = img_decode_file(file, c->max_pixels, &out->frames[i], why, sizeof why);
    if (st)
      FAIL(VID_BAD_FRAME, "%s: frame %lld: %s: %s", path, (long long)idx[i], img_status_name(st),
           why);
    out->index[i] = idx[i];
    out->times[i] = (double)idx[i] / c->folder_fps;
  }
done:
  if (d) closedir(d);
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
  if (rc) vid_frames_free(out);
  return rc;
}

/* ---- a video file ------------------------------------------------------------------------ */

static const char *averr(int code, char *buf, size_t len) {
  av_strerror(code, buf, len);
  return buf;
}

typedef struct {
  AVFormatContext *fmt;
  AVCodecContext *dec;
  int stream;
  double fps;
} vid_open_file;

static void close_file(vid_open_file *f) {
  avcodec_free_context(&f->dec);
  avformat_close_input(&f->fmt);
}

static vid_status open_file(const char *path, bool with_decoder, vid_open_file *f, char *err,
                            size_t err_len) {
  memset(f, 0, sizeof *f);
  char eb[256];
  vid_status rc = VID_OK;
  int r = avformat_open_input(&f->fmt, path, NULL, NULL);
  if (r < 0) FAIL(VID_UNREADABLE, "%s: cannot open as a video: %s", path, averr(r, eb, sizeof eb));
  if ((r = avformat_find_stream_info(f->fmt, NULL)) < 0)
    FAIL(VID_CORRUPT, "%s: cannot read the stream info: %s", path, averr(r, eb, sizeof eb));
  const AVCodec *codec = NULL;
  f->stream = av_find_best_stream(f->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
  if (f->stream < 0)
    FAIL(VID_NO_VIDEO, "%s: no video stream (%u streams)", path, f->fmt->nb_streams);
  AVStream *st = f->fmt->streams[f->stream];
  f->fps = av_q2d(st->avg_frame_rate);
  if (!(f->fps > 0)) f->fps = av_q2d(st->r_frame_rate);
  if (!(f->fps > 0) || !isfinite(f->fps))
    FAIL(VID_CORRUPT, "%s: the video stream has no frame rate", path);
  if (!with_decoder) return VID_OK;
  if (!codec) FAIL(VID_CORRUPT, "%s: no decoder for the video codec", path);
  if (!(f->dec = avcodec_alloc_context3(codec))) FAIL(VID_CORRUPT, "%s: out of memory", path);
  if ((r = avcodec_parameters_to_context(f->dec, st->codecpar)) < 0 ||
      (r = avcodec_open2(f->dec, codec, NULL)) < 0)
    FAIL(VID_CORRUPT, "%s: cannot open the %s decoder: %s", path, codec->name,
         averr(r, eb, sizeof eb));
  return VID_OK;
done:
  close_file(f);
  return rc;
}

/* Copies a decoded frame to RGB. Returns 0 or -1. */
static int frame_rgb(const AVFrame *fr, struct SwsContext **sws, img_rgb *out) {
  if (img_alloc(out, fr->width, fr->height)) return -1;
  *sws = sws_getCachedContext(*sws, fr->width, fr->height, fr->format, fr->width, fr->height,
                              AV_PIX_FMT_RGB24, SWS_BICUBIC, NULL, NULL, NULL);
  if (!*sws) {
    img_free(out);
    return -1;
  }
  uint8_t *dst[4] = {out->px, NULL, NULL, NULL};
  int stride[4] = {fr->width * 3, 0, 0, 0};
  sws_scale(*sws, (const uint8_t *const *)fr->data, fr->linesize, 0, fr->height, dst, stride);
  return 0;
}

static vid_status decode_file(const char *path, const vid_cfg *c, vid_frames *out, char *err,
                              size_t err_len) {
  vid_open_file f;
  vid_status rc = open_file(path, false, &f, err, err_len);
  if (rc) return rc;
  AVPacket *pkt = av_packet_alloc();
  AVFrame *fr = av_frame_alloc();
  struct SwsContext *sws = NULL;
  int64_t idx[256], n_total = 0;
  char eb[256];
  if (!pkt || !fr) FAIL(VID_CORRUPT, "%s: out of memory", path);
  /* pass 1: the frame count, from the packets of the video stream */
  while (av_read_frame(f.fmt, pkt) >= 0) {
    n_total += pkt->stream_index == f.stream;
    av_packet_unref(pkt);
  }
  double fps = f.fps;
  close_file(&f);
  if (!n_total) FAIL(VID_NO_FRAMES, "%s: the video stream has no frames", path);
  int k = vid_pick_frames(n_total, fps, c, idx);
  if (frames_alloc(out, k)) FAIL(VID_CORRUPT, "%s: out of memory", path);
  out->fps = fps;
  out->n_total = n_total;
  /* pass 2: decode in order, keep the picked frames (idx ascending, may repeat) */
  if ((rc = open_file(path, true, &f, err, err_len))) goto done;
  int64_t frame_no = 0;
  int next = 0, r;
  bool flushing = false;
  while (next < k) {
    if (!flushing) {
      r = av_read_frame(f.fmt, pkt);
      if (r < 0) {
        flushing = true;
        avcodec_send_packet(f.dec, NULL);
      } else if (pkt->stream_index != f.stream) {
        av_packet_unref(pkt);
        continue;
      } else {
        r = avcodec_send_packet(f.dec, pkt);
        av_packet_unref(pkt);
        if (r < 0 && r != AVERROR(EAGAIN))
          FAIL(VID_CORRUPT, "%s: frame %lld does not decode: %s", path, (long long)frame_no,
               averr(r, eb, sizeof eb));
      }
    }
    for (;;) {
      r = avcodec_receive_frame(f.dec, fr);
      if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) break;
      if (r < 0)
        FAIL(VID_CORRUPT, "%s: frame %lld does not decode: %s", path, (long long)frame_no,
             averr(r, eb, sizeof eb));
      while (next < k && idx[next] == frame_no) {
        long long limit = c->max_pixels > 0 ? c->max_pixels : IMG_DEFAULT_MAX_PIXELS;
        if ((long long)fr->width * fr->height > limit)
          FAIL(VID_CORRUPT, "%s: frames of %dx%d exceed the pixel limit %lld", path, fr->width,
               fr->height, limit);
        if (frame_rgb(fr, &sws, &out->frames[next]))
          FAIL(VID_CORRUPT, "%s: frame %lld: cannot convert %dx%d to RGB", path,
               (long long)frame_no, fr->width, fr->height);
        out->index[next] = frame_no;
        out->times[next] = (double)frame_no / fps;
        next++;
      }
      av_frame_unref(fr);
      frame_no++;
    }
    if (flushing && r == AVERROR_EOF) break;
  }
  if (next < k)
    FAIL(VID_CORRUPT, "%s: %lld packets but only %lld frames decode (frame %lld was picked)", path,
         (long long)n_total, (long long)frame_no, (long long)idx[next]);
done:
  close_file(&f);
  sws_freeContext(sws);
  av_packet_free(&pkt);
  av_frame_free(&fr);
  if (rc) vid_frames_free(out);
  return rc;
}

vid_status vid_decode(const char *path, const vid_cfg *c, vid_frames *out, char *err,
                      size_t err_len) {
  memset(out, 0, sizeof *out);
  if (c->max_frames < 1 || c->min_frames < 1 || c->max_frames > 256 || c->min_frames > 256 ||
      !(c->rate > 0) || !(c->folder_fps > 0)) {
    vt_seterr(err, err_len,
              "%s: bad video config: rate %g, min_frames %d, max_frames %d, folder_fps %g "
              "(expected rates > 0 and 1..256 frames)",
              path, c->rate, c->min_frames, c->max_frames, c->folder_fps);
    return VID_UNREADABLE;
  }
  /* FFmpeg logs every decoding problem on stderr; ours are reported with the file's name */
  if (av_log_get_level() == AV_LOG_INFO) av_log_set_level(AV_LOG_FATAL);
  struct stat sb;
  if (stat(path, &sb) != 0) {
    vt_seterr(err, err_len, "%s: cannot open: %s", path, strerror(errno));
    return VID_UNREADABLE;
  }
  if (S_ISDIR(sb.st_mode)) return decode_folder(path, c, out, err, err_len);
  if (sb.st_size == 0) {
    vt_seterr(err, err_len, "%s: empty file (0 bytes)", path);
    return VID_UNREADABLE;
  }
  return decode_file(path, c, out, err, err_len);
}
