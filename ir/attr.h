/* ir/attr.h — node attributes by kind (the attr column of ir/ops.def, IrAttrKind in ir.h): the
 * one place that writes them into the IR text form, reads them back, compares and hashes them.
 *
 * In the text form a node's attributes are an operand (a source's declaration index, a
 * constant's value or values) and a dictionary `{key, key=value, ...}` whose values are
 * numbers, words and lists of numbers. ir/print.c renders an IrAttrText and ir/parse.c reads
 * one without knowing any kind; ir/attr.c maps between an IrAttrText and the NodeAttr fields
 * of each kind. Fields that the node's printed result type already states (a reshape's
 * shape, a cast's dtype, a slice's result dims) are not written: ir_attr_read takes them from
 * the type. Invariant: ir_attr_read(ir_attr_write(n)) gives n's attributes back.
 */
#ifndef LATHE_IR_ATTR_H
#define LATHE_IR_ATTR_H

#include "ir.h"

typedef enum IrAttrValueKind {
  IR_ATTR_FLAG,   /* `key` alone */
  IR_ATTR_NUMBER, /* key=3, key=0.5, key=-inf */
  IR_ATTR_LIST,   /* key=[1, 2], a list of numbers */
  IR_ATTR_WORD,   /* key=true, key=gemm */
} IrAttrValueKind;

typedef struct IrAttrValue {
  IrAttrValueKind kind;
  bool is_int;         /* NUMBER: written as an integer (i holds it); LIST: every element is */
  int64_t i;           /* NUMBER when is_int */
  double d;            /* NUMBER: the value as a double (reading: also for integers) */
  int64_t n;           /* LIST: element count */
  const int64_t *ints; /* LIST when is_int: the elements */
  const double *nums;  /* LIST: the elements as doubles (reading: always; writing: !is_int) */
  const char *word;    /* WORD */
  SrcLoc loc;          /* reading: where the key (FLAG) or the value starts, for diagnostics */
} IrAttrValue;

typedef struct IrAttrEntry {
  const char *key;
  IrAttrValue value;
} IrAttrEntry;

enum {
  IR_ATTR_MAX_ENTRIES = 16, /* keys in one dictionary */
  IR_ATTR_POOL = 64,        /* integers of the written lists (a reduce's 32 axes at most) */
};

/* A node's attributes as text: the operand, then the dictionary in the order written.
 * ir_attr_write points the written integer lists into pool, so an IrAttrText it filled must
 * not be copied. */
typedef struct IrAttrText {
  bool has_operand;
  IrAttrValue operand;
  int n;
  IrAttrEntry entry[IR_ATTR_MAX_ENTRIES];
  int64_t pool[IR_ATTR_POOL];
  int n_pool;
} IrAttrText;

/* true when op's attributes start with an operand (ATTR_SOURCE, ATTR_SCAN_ARG, ATTR_CONST) */
bool ir_attr_has_operand(OpKind op);

/* the attributes of n as text (dictionary empty when n's kind writes none) */
void ir_attr_write(const Node *n, IrAttrText *t);

/* What ir_attr_read needs besides the text: the node's op and its written result type. */
typedef struct IrAttrRead {
  OpKind op;
  DType dtype; /* the written result type, for the fields it states */
  const Shape *shape;
  SrcLoc at;    /* where "needs {...}" errors point (the end of the node's type) */
  Arena *arena; /* owns a constant's values (the graph's arena) */
  Diag *d;
} IrAttrRead;

/* NodeAttr of r->op from the text (out zeroed first). Rejects a key the kind does not have, a
 * key given twice, a missing required key, a value of the wrong form or out of range, with a
 * diagnostic at the value (or r->at); false then. */
bool ir_attr_read(const IrAttrRead *r, const IrAttrText *t, NodeAttr *out);

/* attributes of two nodes of the same op are equal (field by field, never all of the union:
 * unions carry stale bytes; a constant's values bitwise, so -0.0 != 0.0 and NaN == NaN) */
bool ir_attr_equal(const Node *a, const Node *b);
/* a hash of n's attributes consistent with ir_attr_equal */
uint64_t ir_attr_hash(const Node *n);

#endif
