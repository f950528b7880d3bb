/* test_onnx_export.c: the ONNX encoder read back by an independent protobuf decoder written
 * here from onnx.proto's field numbers (structure, shapes, every weight's bytes, a class count
 * other than 10, varints past one byte), the atomic write, the size limit, and the commands
 * (`--export-onnx`, `cltrain export`, `eval --predictions`) through the binary. The real
 * consumers (python3-onnx's checker, ONNX Runtime) run in scripts/test_onnx.sh. */
#include <check.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "onnx_export.h"
#include "support.h"
#include "util.h"

/* --- a minimal protobuf reader ------------------------------------------------------------ */

typedef struct { const unsigned char *p; size_t len; } span;

typedef struct {
    int field, wire;
    uint64_t v;     /* varint value (wire 0) */
    span bytes;     /* length-delimited payload (wire 2) */
} pb_field;

static int read_varint(span *s, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (s->len == 0) return -1;
        unsigned char b = *s->p++;
        s->len--;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) { *out = v; return 0; }
    }
    return -1;
}

/* Next field of a message; 0 at its end, 1 a field; a malformed message fails the test, so
 * every message walked here must be consumed exactly. */
static int next_field(span *s, pb_field *f)
{
    if (s->len == 0) return 0;
    uint64_t key;
    ck_assert_int_eq(read_varint(s, &key), 0);
    f->field = (int)(key >> 3);
    f->wire = (int)(key & 7);
    ck_assert_int_gt(f->field, 0);
    if (f->wire == 0) {
        ck_assert_int_eq(read_varint(s, &f->v), 0);
    } else if (f->wire == 2) {
        uint64_t n;
        ck_assert_int_eq(read_varint(s, &n), 0);
        ck_assert_msg(n <= s->len, "length %llu past the end (%zu left)", (unsigned long long)n, s->len);
        f->bytes = (span){s->p, (size_t)n};
        s->p += n;
        s->len -= (size_t)n;
    } else {
        ck_abort_msg("wire type %d: the exporter writes only varints and length-delimited fields", f->wire);
    }
    return 1;
}

static int span_is(span s, const char *str) { return s.len == strlen(str) && memcmp(s.p, str, s.len) == 0; }

/* The only (or the idx-th) length-delimited occurrence of `field` in msg. */
static span sub(span msg, int field, int idx)
{
    pb_field f;
    int seen = 0;
    while (next_field(&msg, &f))
        if (f.field == field && f.wire == 2 && seen++ == idx) return f.bytes;
    ck_abort_msg("field %d #%d missing", field, idx);
    return (span){0};
}

static uint64_t varint_field(span msg, int field)
{
    pb_field f;
    while (next_field(&msg, &f))
        if (f.field == field && f.wire == 0) return f.v;
    ck_abort_msg("varint field %d missing", field);
    return 0;
}

static int count_field(span msg, int field)
{
    pb_field f;
    int n = 0;
    while (next_field(&msg, &f)) n += f.field == field;
    return n;
}

/* ValueInfoProto's shape: [dim_param "N", dim_value width]. */
static void check_value_info(span vi, const char *name, int width)
{
    ck_assert(span_is(sub(vi, 1, 0), name));
    span ttype = sub(sub(vi, 2, 0), 1, 0);
    ck_assert_int_eq(varint_field(ttype, 1), 1);   /* elem_type FLOAT */
    span shape = sub(ttype, 2, 0);
    ck_assert_int_eq(count_field(shape, 1), 2);
    ck_assert(span_is(sub(sub(shape, 1, 0), 2, 0), "N"));
    ck_assert_int_eq(varint_field(sub(shape, 1, 1), 1), (uint64_t)width);
}

/* The initializer named `name`: dims, FLOAT, and raw_data equal to `expect` little-endian. */
static void check_initializer(span graph, const char *name, const float *expect, int rows, int cols)
{
    int n = count_field(graph, 5);
    for (int i = 0; i < n; i++) {
        span t = sub(graph, 5, i);
        if (!span_is(sub(t, 8, 0), name)) continue;
        pb_field f;
        span walk = t;
        uint64_t dims[2];
        int nd = 0;
        while (next_field(&walk, &f))
            if (f.field == 1) { ck_assert_int_lt(nd, 2); dims[nd++] = f.v; }
        ck_assert_int_eq(nd, cols > 0 ? 2 : 1);
        ck_assert_int_eq(dims[0], (uint64_t)rows);
        if (cols > 0) ck_assert_int_eq(dims[1], (uint64_t)cols);
        ck_assert_int_eq(varint_field(t, 2), 1);
        span raw = sub(t, 9, 0);
        size_t count = (size_t)rows * (size_t)(cols > 0 ? cols : 1);
        ck_assert_uint_eq(raw.len, count * 4);
        for (size_t k = 0; k < count; k++) {
            const unsigned char *b = raw.p + 4 * k;
            uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24, e;
            memcpy(&e, &expect[k], 4);
            ck_assert_msg(u == e, "%s[%zu]: 0x%08x, the parameter is 0x%08x", name, k, u, e);
        }
        return;
    }
    ck_abort_msg("no initializer %s", name);
}

/* --- the encoder -------------------------------------------------------------------------- */

static float *sample_params(const model_arch *a)
{
    float *p = xmalloc(a->n_params * sizeof(float), "p");
    for (size_t i = 0; i < a->n_params; i++) p[i] = (float)((double)(i % 977) * 1e-3 - 0.4) * (i % 2 ? -1.0f : 1.0f);
    return p;
}

/* 200 inputs, hidden 130 and 7, 3 classes: widths, dims and the 104,000-byte raw_data all
 * need varints of two or three bytes; the class count is the architecture's. */
static void check_model_bytes(activation act)
{
    model_arch a;
    int hidden[2] = {130, 7};
    ck_assert_int_eq(model_arch_init(&a, 200, hidden, 2, 3, act), 0);
    float *params = sample_params(&a);
    char err[256];
    size_t len;
    unsigned char *bytes = onnx_encode(&a, params, &len, err, sizeof err);
    ck_assert_ptr_nonnull(bytes);
    /* ModelProto starts with ir_version (field 1, varint) = 8, then producer_name "cltrain". */
    ck_assert_int_eq(bytes[0], 0x08);
    ck_assert_int_eq(bytes[1], ONNX_IR_VERSION);
    span model = {bytes, len};
    ck_assert_int_eq(varint_field(model, 1), ONNX_IR_VERSION);
    ck_assert(span_is(sub(model, 2, 0), "cltrain"));
    ck_assert_int_eq(count_field(model, 8), 1);
    span opset = sub(model, 8, 0);
    ck_assert(span_is(sub(opset, 1, 0), ""));
    ck_assert_int_eq(varint_field(opset, 2), ONNX_OPSET);

    span graph = sub(model, 7, 0);
    const char *act_op = act == ACT_SIGMOID ? "Sigmoid" : "Relu";
    const char *ops[] = {"Gemm", act_op, "Gemm", act_op, "Gemm", "Softmax"};
    ck_assert_int_eq(count_field(graph, 1), 6);
    const char *expect_in[] = {ONNX_INPUT_NAME, "z1", "h1", "z2", "h2", "logits"};
    for (int i = 0; i < 6; i++) {
        span node = sub(graph, 1, i);
        ck_assert_msg(span_is(sub(node, 4, 0), ops[i]), "node %d is not %s", i, ops[i]);
        ck_assert(span_is(sub(node, 1, 0), expect_in[i]));
        ck_assert_int_eq(count_field(node, 2), 1);
        if (i % 2 == 0 && i < 6 && ops[i][0] == 'G') {
            char w[8], b[8];
            snprintf(w, sizeof w, "W%d", i / 2 + 1);
            snprintf(b, sizeof b, "b%d", i / 2 + 1);
            ck_assert(span_is(sub(node, 1, 1), w) && span_is(sub(node, 1, 2), b));
            span attr = sub(node, 5, 0);   /* transB = 1, type INT */
            ck_assert(span_is(sub(attr, 1, 0), "transB"));
            ck_assert_int_eq(varint_field(attr, 3), 1);
            ck_assert_int_eq(varint_field(attr, 20), 2);
        }
    }
    ck_assert(span_is(sub(sub(graph, 1, 5), 2, 0), ONNX_OUTPUT_NAME));
    span softmax_axis = sub(sub(graph, 1, 5), 5, 0);
    ck_assert(span_is(sub(softmax_axis, 1, 0), "axis"));
    ck_assert_int_eq(varint_field(softmax_axis, 3), 1);

    ck_assert_int_eq(count_field(graph, 5), 6);
    check_initializer(graph, "W1", params + a.w_off[0], 130, 200);
    check_initializer(graph, "b1", params + a.b_off[0], 130, 0);
    check_initializer(graph, "W2", params + a.w_off[1], 7, 130);
    check_initializer(graph, "b2", params + a.b_off[1], 7, 0);
    check_initializer(graph, "W3", params + a.w_off[2], 3, 7);
    check_initializer(graph, "b3", params + a.b_off[2], 3, 0);
    ck_assert_int_eq(count_field(graph, 11), 1);
    ck_assert_int_eq(count_field(graph, 12), 1);
    check_value_info(sub(graph, 11, 0), ONNX_INPUT_NAME, 200);
    check_value_info(sub(graph, 12, 0), ONNX_OUTPUT_NAME, 3);
    free(bytes);
    free(params);
}

START_TEST(test_relu_model_decodes) { check_model_bytes(ACT_RELU); }
END_TEST

START_TEST(test_sigmoid_model_decodes) { check_model_bytes(ACT_SIGMOID); }
END_TEST

/* One weight layer (no hidden activation): Gemm then Softmax. */
START_TEST(test_single_layer_model)
{
    model_arch a;
    ck_assert_int_eq(model_arch_init(&a, 5, NULL, 0, 4, ACT_RELU), 0);
    float *params = sample_params(&a);
    char err[256];
    size_t len;
    unsigned char *bytes = onnx_encode(&a, params, &len, err, sizeof err);
    ck_assert_ptr_nonnull(bytes);
    span graph = sub((span){bytes, len}, 7, 0);
    ck_assert_int_eq(count_field(graph, 1), 2);
    ck_assert(span_is(sub(sub(graph, 1, 0), 4, 0), "Gemm") && span_is(sub(sub(graph, 1, 1), 4, 0), "Softmax"));
    check_initializer(graph, "W1", params + a.w_off[0], 4, 5);
    free(bytes);
    free(params);
}
END_TEST

/* Over protobuf's 2 GiB: refused with the way out, before any parameter is read (NULL here). */
START_TEST(test_too_large_is_refused)
{
    model_arch a;
    int hidden[1] = {1000000};
    ck_assert_int_eq(model_arch_init(&a, 784, hidden, 1, 10, ACT_RELU), 0);
    char err[256];
    size_t len;
    ck_assert_ptr_null(onnx_encode(&a, NULL, &len, err, sizeof err));
    ck_assert_msg(strstr(err, "2 GiB") && strstr(err, "--export-npy"), "%s", err);
}
END_TEST

/* The file holds exactly the encoding, replaces an older file whole and leaves no temporary
 * behind; a folder that does not exist is a clear error naming the path. */
START_TEST(test_export_is_atomic)
{
    char dir[64];
    work_dir_make(dir, sizeof dir, "onnx");
    model_arch a;
    int hidden[1] = {9};
    ck_assert_int_eq(model_arch_init(&a, 16, hidden, 1, 10, ACT_RELU), 0);
    float *params = sample_params(&a);
    char path[128], err[512];
    snprintf(path, sizeof path, "%s/m.onnx", dir);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 100000; i++) fputc('x', f);   /* longer than the model */
    fclose(f);
    ck_assert_int_eq(export_onnx(path, &a, params, err, sizeof err), 0);
    size_t len, flen;
    unsigned char *bytes = onnx_encode(&a, params, &len, err, sizeof err);
    unsigned char *file = read_file(path, &flen);
    ck_assert_ptr_nonnull(file);
    ck_assert_uint_eq(flen, len);
    ck_assert(memcmp(file, bytes, len) == 0);
    DIR *d = opendir(dir);
    int entries = 0;
    for (struct dirent *e; (e = readdir(d));) entries += e->d_name[0] != '.';
    closedir(d);
    ck_assert_int_eq(entries, 1);

    snprintf(path, sizeof path, "%s/no-such-folder/m.onnx", dir);
    ck_assert_int_eq(export_onnx(path, &a, params, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "no-such-folder/m.onnx") && strstr(err, "cannot write"), "%s", err);
    free(file);
    free(bytes);
    free(params);
    work_dir_remove(dir);
}
END_TEST

/* --- the commands ------------------------------------------------------------------------- */

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static const struct { const char *args, *needle; } bad_exports[] = {
    {"export --onnx m.onnx", "export needs --load MODEL"},
    {"export --load run.model", "export needs --onnx FILE"},
    {"export --load run.model --onnx m.onnx extra", "export takes no file arguments"},
    {"export --load corrupt.model --onnx m.onnx", "corrupt.model"},
    {"export --load missing.model --onnx m.onnx", "missing.model"},
    {"export --load run.model --export-onnx m.onnx", "'cltrain export' takes --onnx FILE"},
    {"--onnx m.onnx --epochs 0", "--onnx is for 'cltrain export"},
    {"--predictions p.csv --epochs 0", "--predictions is for 'cltrain eval'"},
    {"--epochs 0 --export-onnx no-such-folder/m.onnx", "--export-onnx no-such-folder/m.onnx: cannot write there"},
};

static char cli_dir[64];
static char *out_text, *err_text;

/* A folder with a small trained model (run.model, with its --export-onnx run.onnx and the
 * eval CSV), shared by the command tests. */
static void cli_setup(void)
{
    work_dir_make(cli_dir, sizeof cli_dir, "onnx-cli");
    char args[512];
    snprintf(args, sizeof args, "--device host --data %s --train-limit 500 --test-limit 300 --hidden 12,7 "
             "--activation sigmoid --batch 50 --epochs 1 --init xavier --quiet --save run.model "
             "--export-onnx run.onnx", mnist_dir());
    ck_assert_msg(run_cltrain(cli_dir, NULL, args, &out_text, &err_text) == 0, "%s", err_text);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "cd %s && head -c 300 run.model > corrupt.model", cli_dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void cli_teardown(void)
{
    work_dir_remove(cli_dir);
    free(out_text);
    free(err_text);
    out_text = err_text = NULL;
}

START_TEST(test_bad_export_exits_2)
{
    char args[512];
    snprintf(args, sizeof args, "%s --data %s", bad_exports[_i].args, mnist_dir());
    ck_assert_int_eq(run_cltrain(cli_dir, NULL, args, &out_text, &err_text), 2);
    ck_assert_msg(strstr(err_text, bad_exports[_i].needle) != NULL, "'%s': stderr was: %s",
                  bad_exports[_i].args, err_text);
    ck_assert_int_eq(count_lines(err_text), 1);
    char p[128];
    snprintf(p, sizeof p, "%s/m.onnx", cli_dir);
    ck_assert_msg(access(p, F_OK) != 0, "'%s' wrote m.onnx", bad_exports[_i].args);
}
END_TEST

/* `cltrain export` of the saved model writes the bytes --export-onnx wrote after training, and
 * they decode to the saved parameters; an unwritable output is a runtime failure (1). */
START_TEST(test_export_command_matches_training_export)
{
    ck_assert_msg(run_cltrain(cli_dir, NULL, "export --load run.model --onnx again.onnx", &out_text, &err_text) == 0,
                  "%s", err_text);
    ck_assert_msg(strstr(out_text, "784-12-7-10 sigmoid") && strstr(out_text, "[N, 784]"), "%s", out_text);
    char p[128], q[128], err[512];
    snprintf(p, sizeof p, "%s/run.onnx", cli_dir);
    snprintf(q, sizeof q, "%s/again.onnx", cli_dir);
    size_t a_len, b_len;
    unsigned char *a = read_file(p, &a_len), *b = read_file(q, &b_len);
    ck_assert(a && b);
    ck_assert_uint_eq(a_len, b_len);
    ck_assert(memcmp(a, b, a_len) == 0);
    model_file m;
    snprintf(p, sizeof p, "%s/run.model", cli_dir);
    ck_assert_int_eq(model_load(p, &m, err, sizeof err), 0);
    span graph = sub((span){a, a_len}, 7, 0);
    check_initializer(graph, "W2", m.params + m.arch.w_off[1], 7, 12);
    check_initializer(graph, "b3", m.params + m.arch.b_off[2], 10, 0);
    model_file_free(&m);
    free(a);
    free(b);
    ck_assert_int_eq(run_cltrain(cli_dir, NULL, "export --load run.model --onnx no-such-folder/m.onnx", &out_text, &err_text), 1);
    ck_assert_msg(strstr(err_text, "no-such-folder/m.onnx") != NULL, "%s", err_text);
}
END_TEST

/* eval --predictions: a header and one row per test image; each row's predicted class is the
 * largest of its probabilities, which sum to 1, and the rows' accuracy is eval's. */
START_TEST(test_eval_predictions_csv)
{
    char args[512];
    snprintf(args, sizeof args, "eval --device host --data %s --test-limit 300 --load run.model --predictions p.csv", mnist_dir());
    ck_assert_msg(run_cltrain(cli_dir, NULL, args, &out_text, &err_text) == 0, "%s", err_text);
    const char *acc_line = strstr(out_text, "test accuracy: ");
    ck_assert_ptr_nonnull(acc_line);
    long right_eval = atol(strstr(acc_line, "(") + 1);
    char p[128];
    snprintf(p, sizeof p, "%s/p.csv", cli_dir);
    size_t len;
    char *csv = (char *)read_file(p, &len);
    ck_assert_ptr_nonnull(csv);
    ck_assert_int_eq(count_lines(csv), 301);
    ck_assert(strncmp(csv, "index,label,predicted,p0,p1,p2,p3,p4,p5,p6,p7,p8,p9\n", 52) == 0);
    long right = 0;
    char *line = strchr(csv, '\n') + 1;
    for (int i = 0; i < 300; i++) {
        char *end;
        ck_assert_int_eq(strtol(line, &end, 10), i);
        int label = (int)strtol(end + 1, &end, 10), pred = (int)strtol(end + 1, &end, 10);
        double sum = 0, best = -1;
        int arg = -1;
        for (int k = 0; k < 10; k++) {
            ck_assert_int_eq(*end, ',');
            double v = strtod(end + 1, &end);
            sum += v;
            if (v > best) { best = v; arg = k; }
        }
        ck_assert_int_eq(*end, '\n');
        ck_assert_int_eq(pred, arg);
        /* 10 float32 probabilities, each rounded to 9 digits: their sum is 1 within 1e-5. */
        ck_assert_msg(sum > 1 - 1e-5 && sum < 1 + 1e-5, "row %d sums to %.9f", i, sum);
        right += pred == label;
        line = end + 1;
    }
    ck_assert_int_eq(right, right_eval);
    free(csv);
}
END_TEST

/* --help says how to export and what the model's input means. */
START_TEST(test_help_documents_the_input)
{
    ck_assert_int_eq(run_cltrain(cli_dir, NULL, "--help", &out_text, &err_text), 0);
    ck_assert(strstr(out_text, "cltrain export --load MODEL --onnx FILE") != NULL);
    const char *line = strstr(out_text, "--export-onnx FILE");
    ck_assert_ptr_nonnull(line);
    ck_assert_msg(strstr(line, "float32 [N,784]") && strstr(line, "byte/255 in [0,1]"), "%s", out_text);
}
END_TEST

Suite *onnx_export_suite(void)
{
    Suite *s = suite_create("onnx_export");
    TCase *tc = tcase_create("encoder");
    tcase_add_test(tc, test_relu_model_decodes);
    tcase_add_test(tc, test_sigmoid_model_decodes);
    tcase_add_test(tc, test_single_layer_model);
    tcase_add_test(tc, test_too_large_is_refused);
    tcase_add_test(tc, test_export_is_atomic);
    suite_add_tcase(s, tc);
    TCase *cli = tcase_create("commands");
    tcase_set_timeout(cli, 120);
    tcase_add_checked_fixture(cli, cli_setup, cli_teardown);
    tcase_add_loop_test(cli, test_bad_export_exits_2, 0, (int)(sizeof bad_exports / sizeof bad_exports[0]));
    tcase_add_test(cli, test_export_command_matches_training_export);
    tcase_add_test(cli, test_eval_predictions_csv);
    tcase_add_test(cli, test_help_documents_the_input);
    suite_add_tcase(s, cli);
    return s;
}
