/* runtime/progress.c — the training progress bar.
 *
 *   epoch 1/3 [=====>              ] 512/60000 loss 0.4312 acc 85.1% 12345 samples/s ETA 0:12
 *
 * On a terminal (isatty on the stream) the line is redrawn in place with '\r' at most ten
 * times a second and ends with a newline at rt_progress_finish; otherwise (a log file, CI)
 * a plain line is printed each time another tenth of the epoch is done, and at the end.
 *
 * This is the one place in the runtime that writes to a stream: the caller passes it (the
 * CLI passes stderr) and nothing is written anywhere else. Times are CLOCK_MONOTONIC.
 * Invariants: 0 <= done <= total after each update (clamped); last_tenth only grows.
 */
#include "rt_internal.h"

#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { RT_BAR_WIDTH = 20 };

double rt_progress_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void rt_progress_start(RtProgress *p, FILE *out, int epoch, int epochs, int64_t total) {
  memset(p, 0, sizeof *p);
  p->out = out;
  p->tty = out && isatty(fileno(out));
  p->epoch = epoch;
  p->epochs = epochs;
  p->total = total > 0 ? total : 0;
  p->acc = -1;
  p->t0 = rt_progress_now();
  p->last_draw = -1;
}

/* "0:12", "12:05", "1:02:03"; "--:--" when unknown */
static void format_eta(double seconds, char *buf, size_t size) {
  if (!(seconds >= 0) || seconds > 359999) {
    snprintf(buf, size, "--:--");
    return;
  }
  long s = lround(seconds);
  if (s >= 3600)
    snprintf(buf, size, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else
    snprintf(buf, size, "%ld:%02ld", s / 60, s % 60);
}

void rt_progress_format(const RtProgress *p, double elapsed, char *buf, size_t size) {
  char bar[RT_BAR_WIDTH + 1];
  int filled = p->total ? (int)(RT_BAR_WIDTH * p->done / p->total) : RT_BAR_WIDTH;
  for (int i = 0; i < RT_BAR_WIDTH; i++)
    bar[i] = i < filled ? '=' : i == filled ? '>' : ' ';
  bar[RT_BAR_WIDTH] = '\0';
  double rate = elapsed > 0 ? (double)p->done / elapsed : 0;
  char eta[32];
  format_eta(rate > 0 ? (double)(p->total - p->done) / rate : -1, eta, sizeof eta);
  char acc[32] = "";
  if (p->acc >= 0) snprintf(acc, sizeof acc, " acc %.1f%%", 100.0 * p->acc);
  snprintf(buf, size, "epoch %d/%d [%s] %lld/%lld loss %.4f%s %.0f samples/s ETA %s", p->epoch,
           p->epochs, bar, (long long)p->done, (long long)p->total, p->loss, acc, rate, eta);
}

static void draw(RtProgress *p, double now, bool final) {
  if (!p->out) return;
  char line[256];
  rt_progress_format(p, now - p->t0, line, sizeof line);
  /* on a terminal: return to column 0, draw, clear the rest of the line */
  if (p->tty)
    fprintf(p->out, "\r%s\033[K%s", line, final ? "\n" : "");
  else
    fprintf(p->out, "%s\n", line);
  fflush(p->out);
  p->last_draw = now;
}

void rt_progress_update(RtProgress *p, int64_t done, double loss, double acc) {
  p->done = done < 0 ? 0 : done > p->total ? p->total : done;
  p->loss = loss;
  p->acc = acc;
  double now = rt_progress_now();
  if (p->tty) {
    if (p->last_draw < 0 || now - p->last_draw >= 0.1) draw(p, now, false);
    return;
  }
  int tenth = p->total ? (int)(10 * p->done / p->total) : 10;
  if (tenth > p->last_tenth && tenth < 10) { /* the final line comes from finish */
    p->last_tenth = tenth;
    draw(p, now, false);
  }
}

void rt_progress_finish(RtProgress *p) {
  p->last_tenth = 10;
  draw(p, rt_progress_now(), true);
}
