/* driver/weights.c — a loaded model's params and state from and to tensor sets (checkpoints,
 * an imported ONNX file's initializers), one rule for the API, the CLI and the REPL.
 *
 * A tensor fits its slot when names, shapes and dtypes agree; a float tensor of the other
 * float type (f32 checkpoint, model compiled with --dtype f64, or the reverse) is converted
 * element by element, so one checkpoint serves both precisions.
 */
#include "driver/driver.h"

#include <stdio.h>
#include <string.h>

static Shape info_shape(const lathe_tensor_info *ti) {
  Shape s = {0};
  s.rank = ti->rank;
  for (int k = 0; k < ti->rank && k < IR_MAX_RANK; k++)
    s.dim[k] = ti->shape[k];
  return s;
}

/* Copies (or converts) t into its slot at base + ti->offset after checking shape and dtype. */
static bool load_one(const lathe_tensor_info *ti, const Tensor *t, char *base, const char *what,
                     Diag *d) {
  Shape want = info_shape(ti);
  DType to = (DType)ti->dtype;
  bool convert = t->dtype != to && dtype_is_float(t->dtype) && dtype_is_float(to);
  if ((t->dtype != to && !convert) || !shape_equal(&t->shape, &want)) {
    char a[200], b[200];
    diag_error(d, (SrcLoc){0}, "%s: tensor '%s' is %s%s, but the model expects %s%s", what,
               ti->name, dtype_name(t->dtype), shape_str(&t->shape, a, sizeof a), dtype_name(to),
               shape_str(&want, b, sizeof b));
    return false;
  }
  if (!convert) {
    memcpy(base + ti->offset, t->data, ti->bytes);
    return true;
  }
  Tensor slot = {.dtype = to, .shape = want, .data = base + ti->offset};
  int64_t n = shape_numel(&want);
  for (int64_t i = 0; i < n; i++)
    tensor_set(&slot, i, tensor_get(t, i));
  return true;
}

static const lathe_tensor_info *find_info(const lathe_tensor_info *ts, int n, const char *name,
                                          size_t len) {
  for (int i = 0; i < n; i++)
    if (strlen(ts[i].name) == len && strncmp(ts[i].name, name, len) == 0) return &ts[i];
  return NULL;
}

/* The pruning masks of a checkpoint (issue 20): a tensor "<p>.mask" that is no param or state
 * of the model must be the mask of a param p of the model, of p's shape (a mask the model
 * does not keep, of a param it does not prune, is ignored). Otherwise the checkpoint belongs
 * to another model: rejected, naming every such mask. */
static bool check_masks(const lathe_model_info *info, const RtTensorSet *set, const char *what,
                        Diag *d) {
  char bad[1024] = "";
  size_t used = 0;
  for (int i = 0; i < set->n; i++) {
    const char *name = set->items[i].name;
    size_t len = strlen(name);
    if (len < 6 || strcmp(name + len - 5, ".mask") != 0 ||
        find_info(info->params, info->n_params, name, len) ||
        find_info(info->states, info->n_states, name, len))
      continue;
    const lathe_tensor_info *p = find_info(info->params, info->n_params, name, len - 5);
    Shape want = p ? info_shape(p) : (Shape){0};
    if (p && shape_equal(&set->items[i].t.shape, &want)) continue;
    if (used < sizeof bad)
      used += (size_t)snprintf(bad + used, sizeof bad - used, "%s%s%s", used ? ", " : "", name,
                               p ? " (not of its param's shape)" : "");
  }
  if (!used) return true;
  diag_error(d, (SrcLoc){0}, "%s: pruning masks that match no param of the model: %s", what,
             bad);
  return false;
}

bool driver_weights_load(const lathe_model_info *info, void *params, void *state,
                         const RtTensorSet *set, const char *what, Diag *d) {
  if (!check_masks(info, set, what, d)) return false;
  for (int i = 0; i < info->n_params; i++) {
    const Tensor *t = rt_set_find(set, info->params[i].name);
    if (!t) {
      diag_error(d, (SrcLoc){0}, "%s: no tensor '%s' (the model has %d params)", what,
                 info->params[i].name, info->n_params);
      return false;
    }
    if (!load_one(&info->params[i], t, params, what, d)) return false;
  }
  for (int i = 0; i < info->n_states; i++) { /* optional: present → exact resume */
    const Tensor *t = rt_set_find(set, info->states[i].name);
    if (t && !load_one(&info->states[i], t, state, what, d)) return false;
  }
  return true;
}

static bool add_all(RtTensorSet *set, const lathe_tensor_info *ts, int n, const void *base) {
  for (int i = 0; i < n; i++) {
    Shape s = info_shape(&ts[i]);
    Tensor *t = rt_set_add(set, ts[i].name, (DType)ts[i].dtype, &s);
    if (!t) return false;
    memcpy(t->data, (const char *)base + ts[i].offset, ts[i].bytes);
  }
  return true;
}

bool driver_weights_set(const lathe_model_info *info, const void *params, const void *state,
                        bool with_state, RtTensorSet *set) {
  return add_all(set, info->params, info->n_params, params) &&
         (!with_state || add_all(set, info->states, info->n_states, state));
}

bool driver_weights_save(const lathe_model_info *info, const void *params, const void *state,
                         bool with_state, const char *path, Diag *d) {
  RtTensorSet set;
  rt_set_init(&set);
  bool ok = driver_weights_set(info, params, state, with_state, &set);
  if (!ok) diag_error(d, (SrcLoc){0}, "out of memory saving '%s'", path);
  ok = ok && rt_safetensors_write(path, &set, d);
  rt_set_fini(&set);
  return ok;
}
