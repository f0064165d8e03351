#!/usr/bin/env python3
"""tests/malformed/make_corpus.py OUT_DIR ROOT — writes the malformed-model corpus that
tests/malformed.sh checks: every file must be rejected by `lathe check` with a located error
(FILE:LINE:COL) and exit status 1 or 2, and no crash or sanitizer report. Deterministic (fixed
seeds), so a failure names a file that can be regenerated. Categories: parse errors,
unterminated constructs (examples cut inside their model), type and shape errors, huge,
negative and zero dims, deep nesting, binary garbage."""
import os
import random
import sys

out, root = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
files = {}


def model(body, sig='x: f32[4, 3]', pre=''):
    return pre + 'model m(%s) {\n%s\n}\n' % (sig, body)


# parse errors
parse = {
    'missing_rparen': model('  output y = relu(x'),
    'missing_rbracket': model('  output y = x[0'),
    'extra_rparen': model('  output y = relu(x))'),
    'missing_expr': model('  output y ='),
    'missing_assign': model('  output y relu(x)'),
    'binary_no_rhs': model('  output y = x +'),
    'double_op': model('  output y = x + * x'),
    'bad_toplevel': 'x = 3\n' + model('  output y = x'),
    'bad_arg_list': 'model m(x f32[2]) {\n  output y = x\n}\n',
    'bad_type': model('  output y = x', sig='x: [4, 3]'),
    'bad_dtype_word': model('  output y = x', sig='x: f33[4]'),
    'chained_compare': model('  output y = x < x < x'),
    'as_not_call': model('  output y = x as foo'),
    'keyword_as_name': model('  model = x\n  output y = model'),
    'lone_ellipsis': model('  output y = ...'),
    'stray_at': model('  output y = @ x'),
    'fn_no_arrow': 'fn f(x: f32[2]) f32[2] {\n  return x\n}\n' + model('  output y = x'),
    'fn_no_return_type': 'fn f(x: f32[2]) -> {\n  return x\n}\n' + model('  output y = x'),
    'const_no_value': 'const N =\n' + model('  output y = x'),
    'import_no_name': 'import\n' + model('  output y = x'),
    'train_no_brace': model('  loss = sum(x)') + 'train m minimize loss\n',
    'train_bad_item': model('  loss = sum(x)') + 'train m {\n  maximize loss\n}\n',
    'scan_no_with': model('  output y = scan t in 0..4 (h = x) {\n    yield h\n  }'),
    'scan_no_range': model('  output y = scan t in 0 with (h = x) {\n    yield h\n  }'),
    'slice_triple_colon': model('  output y = x[0:1:2:3]'),
    'number_suffix': model('  output y = x * 2.0f'),
    'int_overflow': model('  output y = x * 99999999999999999999999'),
    'bad_char': model('  output y = x $ x'),
    'tab_garbage': model('  output y = x\t\x07'),
}
# unterminated constructs
unterminated = {
    'unterminated_model': 'model m(x: f32[2]) {\n  output y = x\n',
    'unterminated_fn': 'fn f(x: f32[2]) -> f32[2] {\n  return x\n' + model('  output y = x'),
    'unterminated_args': 'model m(x: f32[2]\n',
    'unterminated_shape': 'model m(x: f32[2, \n',
    'unterminated_call': model('  output y = softmax(x, axis = \n'),
    'unterminated_list': model('  output y = reshape(x, [12, \n'),
    'unterminated_scan': model('  output y = scan t in 0..4 with (h = x) {\n    yield h\n'),
    'unterminated_train': model('  loss = sum(x)') + 'train m {\n  minimize loss\n',
    'unterminated_step': model('  loss = sum(x)') + 'train m {\n  step a {\n  minimize loss\n',
}
# type and shape errors
shape = {
    'matmul_mismatch': model('  output y = x @ x'),
    'broadcast_mismatch': model('  output y = x + ones(f32[5])', sig='x: f32[4, 3]'),
    'unknown_name': model('  output y = x + nosuch'),
    'unknown_fn': model('  output y = nosuch(x)'),
    'builtin_arity': model('  output y = relu(x, x)'),
    'builtin_kwarg': model('  output y = softmax(x, axes = 1)'),
    'axis_range': model('  output y = softmax(x, axis = 5)'),
    'reshape_count': model('  output y = reshape(x, [5, 5])'),
    'int_tensor_add': model('  output y = x + l', sig='x: f32[4], l: i32[4]'),
    'duplicate_input': 'model m(x: f32[2], x: f32[2]) {\n  output y = x\n}\n',
    'duplicate_binding': model('  a = x\n  a = x\n  output y = a'),
    'output_twice': model('  output y = x\n  output y = x'),
    'no_output': model('  a = x'),
    'param_path_missing': model('  param w: f32[3] = zeros\n  output y = x * m.w'),
    'if_not_bool': model('  if 2 {\n    a = x\n  }\n  output y = x'),
    'fn_recursion': 'fn f(x: f32[2]) -> f32[2] {\n  return f(x)\n}\n' +
                    model('  output y = f(x)', sig='x: f32[2]'),
    'fn_wrong_return': 'fn f(x: f32[2]) -> f32[3] {\n  return x\n}\n' +
                       model('  output y = f(x)', sig='x: f32[2]'),
    'fn_no_return': 'fn f(x: f32[2]) -> f32[2] {\n  y = x\n}\n' +
                    model('  output y = f(x)', sig='x: f32[2]'),
    'loss_not_scalar': model('  loss = x * 2') + 'train m {\n  minimize loss\n  optimizer sgd\n}\n',
    'train_unknown_loss': model('  loss = sum(x)') + 'train m {\n  minimize nope\n  optimizer sgd\n}\n',
    'train_bad_optimizer': model('  loss = sum(x)') + 'train m {\n  minimize loss\n  optimizer fast\n}\n',
    'train_glob_nothing': model('  loss = sum(x)') +
                          'train m {\n  minimize loss\n  params q.*\n  optimizer sgd\n}\n',
    'index_out_of_range': model('  output y = x[7]'),
    'slice_empty': model('  output y = x[3:1]'),
    'concat_mismatch': model('  output y = concat([x, ones(f32[2, 2])], axis = 0)'),
    'split_uneven': model('  a, b = split(x, 2, axis = 1)\n  output y = a'),
    'one_hot_depth_zero': model('  output y = one_hot(l, 0)', sig='l: i32[4]'),
    'conv_kernel_too_big': 'import nn\n' + model('  output y = conv2d(x, 2, 9)',
                                                 sig='x: f32[1, 1, 4, 4]'),
    'dense_zero_units': 'import nn\n' + model('  output y = dense(x, 0)'),
    'import_missing': 'import nosuchlib\n' + model('  output y = x'),
    'scan_nested': model('  output y = scan t in 0..2 with (h = x) {\n'
                         '    yield scan u in 0..2 with (g = h) {\n      yield g\n    }\n  }'),
    'define_bad_use': 'const N = M\n' + model('  output y = x'),
    'as_without_params': model('  output y = relu(x) as r'),
}
# huge, negative and zero dims
dims = {
    'dim_zero': model('  output y = x', sig='x: f32[0, 3]'),
    'dim_negative': model('  output y = x', sig='x: f32[-4, 3]'),
    'dim_huge': model('  output y = x', sig='x: f32[9223372036854775807, 2]'),
    'dim_product_overflow': model('  output y = x', sig='x: f32[4294967296, 4294967296, 4]'),
    'dim_too_many': model('  output y = x', sig='x: f32[' + ', '.join(['1'] * 12) + ']'),
    'const_zero_dim': 'const N = 0\n' + model('  output y = x', sig='x: f32[N]'),
    'const_negative_dim': 'const N = 0 - 5\n' + model('  output y = x', sig='x: f32[N]'),
    'zeros_negative': model('  output y = x + zeros(f32[-1])'),
    'reshape_negative': model('  output y = reshape(x, [-3, -4])'),
    'param_huge': 'fn big(x: f32[2]) -> f32[2] {\n  param w: f32[2000000000000, 2] = zeros\n'
                  '  return x\n}\n' + model('  output y = big(x)', sig='x: f32[2]'),
}
# deep nesting
D = 10000
deep = {
    'deep_parens': model('  output y = ' + '(' * D + 'x' + ')' * D),
    'deep_calls': model('  output y = ' + 'relu(' * D + 'x' + ')' * D),
    'deep_minus': model('  output y = ' + '-' * D + 'x'),
    'deep_index': model('  output y = x' + '[0:4]' * D),
    'deep_lists': model('  output y = reshape(x, ' + '[' * D + '12' + ']' * D + ')'),
    'long_chain_plus': model('  output y = ' + ' + '.join(['x'] * 100000)),
    'long_chain_mul': model('  output y = ' + ' * '.join(['x'] * 100000)),
    'long_chain_undefined': model('  output y = ' + ' + '.join(['x'] * 100000) + ' + nope'),
    'deep_dims': model('  output y = x', sig='x: f32[' + '(' * D + '4' + ')' * D + ']'),
    'deep_scans': model('  output y = ' + 'scan t in 0..2 with (h = x) {\n yield ' * 2000 +
                        'h' + '\n}' * 2000),
}
for group in (parse, unterminated, shape, dims, deep):
    for name, text in group.items():
        files[name + '.lathe'] = text.encode()

# examples cut inside their model body: the block never closes
for ex in sorted(os.listdir(os.path.join(root, 'examples'))):
    if not ex.endswith('.lathe'):
        continue
    text = open(os.path.join(root, 'examples', ex), 'rb').read()
    start = text.find(b'\nmodel ')
    end = text.find(b'\n}', start)
    if start < 0 or end < 0:
        continue
    for k, frac in enumerate((0.2, 0.5, 0.8)):
        files['cut_%s_%d.lathe' % (ex[:-6], k)] = text[:start + int((end - start) * frac)]

# binary garbage (fixed seeds), some with NUL bytes, some after a valid prefix
rng = random.Random(24)
for k in range(20):
    data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 600)))
    if k % 4 == 3:
        data = model('  output y = x').encode() + data
    files['garbage_%02d.lathe' % k] = data

for name, data in files.items():
    with open(os.path.join(out, name), 'wb') as f:
        f.write(data)
print(len(files))
