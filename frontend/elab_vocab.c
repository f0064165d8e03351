/* frontend/elab_vocab.c — the dispatch of the issue-22 builtins that live in files of their own
 * (elab_conv1d.c: max_pool1d, avg_pool1d; elab_einsum.c: einsum; elab_gather.c: gather,
 * scatter_add, topk, topk_indices; elab_resize.c: upsample, interpolate; elab_state.c:
 * write_at): one table of names. The
 * 1-D convolutions are the `conv`/`conv_transpose` builtins of elab_conv.c on a rank-3 input.
 */
#include "frontend/elab.h"

#include <string.h>

typedef Value (*VocabFn)(Elab *E, Scope *s, const Expr *call);

static const struct {
  const char *name;
  VocabFn fn;
} vocab[] = {
    {"max_pool1d", elab_pool1d_call},  {"avg_pool1d", elab_pool1d_call},
    {"einsum", elab_einsum_call},      {"gather", elab_gather_call},
    {"scatter_add", elab_gather_call}, {"topk", elab_topk_call},
    {"topk_indices", elab_topk_call},  {"upsample", elab_resize_call},
    {"interpolate", elab_resize_call}, {"write_at", elab_write_at_call},
};
enum { N_VOCAB = sizeof vocab / sizeof vocab[0] };

bool elab_vocab_is_builtin(const char *name) {
  for (int i = 0; i < N_VOCAB; i++)
    if (strcmp(vocab[i].name, name) == 0) return true;
  return false;
}

Value elab_vocab_call(Elab *E, Scope *s, const Expr *call) {
  for (int i = 0; i < N_VOCAB; i++)
    if (strcmp(vocab[i].name, call->name) == 0) return vocab[i].fn(E, s, call);
  return (Value){0};
}
