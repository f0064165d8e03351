/* runtime/data_image.c — image-folder datasets (the torchvision ImageFolder layout):
 * DIR/<class>/NAME.png|*.jpg|*.jpeg, class ids in sorted order of the class directory names.
 *
 * PNG is decoded by libpng's simplified API, JPEG by libjpeg(-turbo); no decoder of our own.
 * Every image is converted to the requested channels (1 gray, 3 RGB), resized bilinearly to
 * the requested size (default: the first image's) and scaled to [0, 1], giving the arrays
 * "x" (f32 [C, H, W] per sample) and "label" (i32). An unreadable, corrupt or truncated
 * image is an error naming the file (libjpeg's "premature end" warnings included).
 */
#include "data.h"

#include <dirent.h>
#include <errno.h>
#include <jpeglib.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* the largest image decoded, in pixels (64 Mpixel, e.g. 8192 x 8192): a header may claim up
 * to 65535 x 65535 (JPEG) or 1000000 x 1000000 (libpng's default limit), tens of gigabytes */
enum { IMAGE_MAX_PIXELS = 1 << 26 };

static bool image_too_large(const char *path, uint64_t w, uint64_t h, Diag *d) {
  if (w * h <= IMAGE_MAX_PIXELS) return false;
  rt_error(d, "%s: the image is %llu x %llu pixels, more than the %d pixels lathe decodes", path,
           (unsigned long long)w, (unsigned long long)h, IMAGE_MAX_PIXELS);
  return true;
}

typedef struct Pixels {
  unsigned char *px; /* h * w * c bytes, interleaved */
  int64_t h, w;
} Pixels;

static bool has_ext(const char *name, const char *ext) {
  size_t n = strlen(name), k = strlen(ext);
  if (n < k) return false;
  for (size_t i = 0; i < k; i++)
    if ((name[n - k + i] | 0x20) != ext[i]) return false;
  return true;
}

static bool read_png(const char *path, int channels, Pixels *out, Diag *d) {
  png_image img;
  memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&img, path)) {
    rt_error(d, "%s: cannot read the PNG image: %s", path, img.message);
    return false;
  }
  if (image_too_large(path, img.width, img.height, d)) {
    png_image_free(&img);
    return false;
  }
  img.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  out->h = img.height, out->w = img.width;
  out->px = malloc(PNG_IMAGE_SIZE(img));
  if (!out->px || !png_image_finish_read(&img, NULL, out->px, 0, NULL)) {
    rt_error(d, "%s: corrupt or truncated PNG image: %s", path,
             out->px ? img.message : "no memory");
    png_image_free(&img);
    free(out->px), out->px = NULL;
    return false;
  }
  return true;
}

typedef struct JpegError {
  struct jpeg_error_mgr mgr;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
} JpegError;

static void jpeg_fail(j_common_ptr c) {
  JpegError *e = (JpegError *)c->err;
  c->err->format_message(c, e->message);
  longjmp(e->jump, 1);
}

/* warnings (a truncated file: "Premature end of JPEG file") are errors too */
static void jpeg_warn(j_common_ptr c, int level) {
  if (level < 0) jpeg_fail(c);
}

static bool read_jpeg(const char *path, int channels, Pixels *out, Diag *d) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    rt_error(d, "cannot open '%s': %s", path, strerror(errno));
    return false;
  }
  struct jpeg_decompress_struct c;
  JpegError err;
  c.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_fail;
  err.mgr.emit_message = jpeg_warn;
  unsigned char *volatile px = NULL;
  if (setjmp(err.jump)) {
    rt_error(d, "%s: corrupt or truncated JPEG image: %s", path, err.message);
    jpeg_destroy_decompress(&c);
    fclose(f);
    free(px);
    return false;
  }
  jpeg_create_decompress(&c);
  jpeg_stdio_src(&c, f);
  jpeg_read_header(&c, TRUE);
  c.out_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  if (image_too_large(path, c.image_width, c.image_height, d)) {
    jpeg_destroy_decompress(&c);
    fclose(f);
    return false;
  }
  jpeg_start_decompress(&c);
  size_t row = (size_t)c.output_width * (size_t)channels;
  px = malloc(row * c.output_height);
  if (!px) {
    snprintf(err.message, sizeof err.message, "no memory for %u x %u pixels", c.output_width,
             c.output_height);
    longjmp(err.jump, 1);
  }
  while (c.output_scanline < c.output_height) {
    JSAMPROW r = px + row * c.output_scanline;
    jpeg_read_scanlines(&c, &r, 1);
  }
  jpeg_finish_decompress(&c);
  out->h = c.output_height, out->w = c.output_width, out->px = px;
  jpeg_destroy_decompress(&c);
  fclose(f);
  return true;
}

/* bilinear resize of p into dst [channels, h, w] floats in [0, 1] (align-corners off) */
static void resample(const Pixels *p, int channels, int64_t h, int64_t w, float *dst) {
  for (int64_t y = 0; y < h; y++) {
    double sy = ((double)y + 0.5) * (double)p->h / (double)h - 0.5;
    int64_t y0 = sy < 0 ? 0 : (int64_t)sy, y1 = y0 + 1 < p->h ? y0 + 1 : p->h - 1;
    double fy = sy < 0 ? 0 : sy - (double)y0;
    for (int64_t x = 0; x < w; x++) {
      double sx = ((double)x + 0.5) * (double)p->w / (double)w - 0.5;
      int64_t x0 = sx < 0 ? 0 : (int64_t)sx, x1 = x0 + 1 < p->w ? x0 + 1 : p->w - 1;
      double fx = sx < 0 ? 0 : sx - (double)x0;
      for (int ch = 0; ch < channels; ch++) {
#define AT(yy, xx) (double)p->px[((yy)*p->w + (xx)) * channels + ch]
        double v = (1 - fy) * ((1 - fx) * AT(y0, x0) + fx * AT(y0, x1)) +
                   fy * ((1 - fx) * AT(y1, x0) + fx * AT(y1, x1));
#undef AT
        dst[(ch * h + y) * w + x] = (float)(v / 255.0);
      }
    }
  }
}

typedef struct Names {
  char **v;
  int n, cap;
} Names;

static bool names_add(Names *s, const char *name) {
  if (s->n == s->cap) {
    int cap = s->cap ? 2 * s->cap : 16;
    char **grown = realloc(s->v, (size_t)cap * sizeof *grown);
    if (!grown) return false;
    s->v = grown, s->cap = cap;
  }
  return (s->v[s->n++] = strdup(name)) != NULL;
}

static void names_fini(Names *s) {
  for (int i = 0; i < s->n; i++)
    free(s->v[i]);
  free(s->v);
}

static int cmp_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* entries of dir that are directories (dirs) or image files (!dirs), sorted */
static bool list_dir(const char *dir, bool dirs, Names *out, Diag *d) {
  DIR *h = opendir(dir);
  if (!h) {
    rt_error(d, "cannot open directory '%s': %s", dir, strerror(errno));
    return false;
  }
  bool ok = true;
  for (struct dirent *e; ok && (e = readdir(h));) {
    if (e->d_name[0] == '.') continue;
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (stat(path, &st) != 0) continue;
    bool image =
        has_ext(e->d_name, ".png") || has_ext(e->d_name, ".jpg") || has_ext(e->d_name, ".jpeg");
    if (dirs ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode) && image) ok = names_add(out, e->d_name);
  }
  closedir(h);
  if (ok && out->n) qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_name);
  return ok;
}

bool rt_data_is_image_folder(const char *dir) {
  Names sub = {0};
  Diag quiet;
  diag_init(&quiet);
  bool yes = list_dir(dir, true, &sub, &quiet) && sub.n > 0;
  names_fini(&sub);
  diag_fini(&quiet);
  return yes;
}

typedef struct Folder {
  const char *dir;
  int channels;
  int64_t h, w; /* target size; 0 until the first image when not given */
  float *x;     /* n * channels * h * w */
  int32_t *y;
  int64_t n, cap;
} Folder;

static bool decode_into(Folder *f, const char *path, int32_t label, Diag *d) {
  Pixels p = {0};
  bool png = has_ext(path, ".png");
  if (!(png ? read_png(path, f->channels, &p, d) : read_jpeg(path, f->channels, &p, d)))
    return false;
  if (!f->h) f->h = p.h, f->w = p.w;
  int64_t per = f->channels * f->h * f->w;
  if (f->n == f->cap) {
    int64_t cap = f->cap ? 2 * f->cap : 16;
    float *x = realloc(f->x, (size_t)(cap * per) * sizeof *x);
    if (x) f->x = x;
    int32_t *y = realloc(f->y, (size_t)cap * sizeof *y);
    if (y) f->y = y;
    if (!x || !y) {
      free(p.px);
      return false;
    }
    f->cap = cap;
  }
  resample(&p, f->channels, f->h, f->w, f->x + f->n * per);
  f->y[f->n++] = label;
  free(p.px);
  return true;
}

static bool read_classes(Folder *f, const Names *classes, Diag *d) {
  for (int c = 0; c < classes->n; c++) {
    char sub[4096];
    snprintf(sub, sizeof sub, "%s/%s", f->dir, classes->v[c]);
    Names files = {0};
    bool ok = list_dir(sub, false, &files, d);
    for (int i = 0; ok && i < files.n; i++) {
      char path[8192];
      snprintf(path, sizeof path, "%s/%s", sub, files.v[i]);
      ok = decode_into(f, path, c, d);
    }
    names_fini(&files);
    if (!ok) return false;
  }
  return true;
}

static bool add_arrays(lathe_dataset *ds, Folder *f, Diag *d) {
  Shape sx = {.rank = 4, .dim = {f->n, f->channels, f->h, f->w}};
  Shape sy = {.rank = 1, .dim = {f->n}};
  RtArray x = {.name = strdup("x"),
               .file = strdup(f->dir),
               .dtype = DT_F32,
               .sample = {.rank = 3, .dim = {f->channels, f->h, f->w}},
               .per = f->channels * f->h * f->w,
               .n = f->n};
  RtArray y = {.name = strdup("label"),
               .file = strdup(f->dir),
               .dtype = DT_I32,
               .per = 1,
               .n = f->n,
               .row_bytes = 4};
  x.row_bytes = (size_t)x.per * sizeof(float);
  bool ok = x.name && x.file && y.name && y.file && tensor_alloc(&x.owned, DT_F32, &sx) &&
            tensor_alloc(&y.owned, DT_I32, &sy);
  if (ok) {
    memcpy(x.owned.data, f->x, (size_t)(f->n * x.per) * sizeof(float));
    memcpy(y.owned.data, f->y, (size_t)f->n * sizeof(int32_t));
    x.data = x.owned.data, y.data = y.owned.data;
    ds->store->image_h = f->channels == 1 ? f->h : 0;
    ds->store->image_w = f->channels == 1 ? f->w : 0;
    return rt_data_add(ds, &x, d) && rt_data_add(ds, &y, d);
  }
  rt_array_fini(&x), rt_array_fini(&y);
  return false;
}

bool rt_data_read_image_folder(lathe_dataset *ds, const char *dir, const lathe_data_options *o,
                               Diag *d) {
  Folder f = {.dir = dir,
              .channels = o->image_channels ? o->image_channels : 3,
              .h = o->image_h,
              .w = o->image_w};
  if (f.channels != 1 && f.channels != 3) {
    rt_error(d, "%s: images can be read with 1 (gray) or 3 (RGB) channels, not %d", dir,
             f.channels);
    return false;
  }
  Names classes = {0};
  bool ok = list_dir(dir, true, &classes, d) && read_classes(&f, &classes, d);
  if (ok && f.n == 0) {
    rt_error(d,
             "%s: no .png or .jpg images in its class directories (expected "
             "DIR/<class>/<image>.png)",
             dir);
    ok = false;
  }
  ok = ok && add_arrays(ds, &f, d);
  RtStore *s = ds->store;
  if (ok && !s->classes) {
    s->classes = classes.v, s->n_classes = classes.n;
    classes.v = NULL, classes.n = 0;
  }
  names_fini(&classes);
  free(f.x), free(f.y);
  if (!ok && !d->n_errors) rt_error(d, "%s: out of memory reading the images", dir);
  return ok;
}
