/* cli/progress.c — the training progress line.
 *
 * On a terminal, one line redrawn in place (at most 10 times a second):
 *   epoch 1/3 [=========>          ] 30016/60000  loss 0.4312  acc 85.1%  41230 samples/s  ETA 0:01
 * Otherwise (a log file, CI), a plain line at every 10% of the epoch.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void cli_progress_start(CliProgress *p, int epoch, int epochs, int64_t total) {
  memset(p, 0, sizeof *p);
  p->epoch = epoch;
  p->epochs = epochs;
  p->total = total;
  p->tty = isatty(fileno(stderr));
  p->t0 = now();
}

static void draw(CliProgress *p, bool final) {
  double elapsed = now() - p->t0;
  double rate = elapsed > 0 ? (double)p->done / elapsed : 0;
  double eta = rate > 0 ? (double)(p->total - p->done) / rate : 0;
  char bar[21];
  int filled = p->total ? (int)(20 * p->done / p->total) : 20;
  for (int i = 0; i < 20; i++) bar[i] = i < filled ? '=' : (i == filled ? '>' : ' ');
  bar[20] = '\0';
  fprintf(stderr, "%sepoch %d/%d [%s] %lld/%lld  loss %.4f  acc %5.1f%%  %.0f samples/s  ETA %d:%02d%s",
          p->tty ? "\r" : "", p->epoch, p->epochs, bar, (long long)p->done, (long long)p->total,
          p->loss, 100.0 * p->acc, rate, (int)eta / 60, (int)eta % 60,
          p->tty && !final ? "\033[K" : "\n");
  fflush(stderr);
}

void cli_progress_update(CliProgress *p, int64_t done, double loss, double acc) {
  p->done = done;
  p->loss = loss;
  p->acc = acc;
  double t = now();
  if (p->tty) {
    if (t - p->last_draw >= 0.1) {
      draw(p, false);
      p->last_draw = t;
    }
  } else {
    int decile = p->total ? (int)(10 * done / p->total) : 10;
    if (decile > p->last_decile && done < p->total) {
      p->last_decile = decile;
      draw(p, false);
    }
  }
}

void cli_progress_finish(CliProgress *p) {
  if (p->tty) {
    draw(p, false);
    fputs("\n", stderr);
  } else {
    draw(p, true);
  }
}

double cli_progress_seconds(const CliProgress *p) { return now() - p->t0; }
