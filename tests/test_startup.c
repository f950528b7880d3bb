/* test_startup.c: what a start-up builds, through the binary: the default training (784-10-10,
 * full batch, the sparse first layer) with an empty program cache builds exactly the programs
 * of the kernels it launches (from --profile's kernel table and its program list), one program
 * per layer and file, a second run loads every one of them from cltrain's cache (PoCL's own
 * off) or builds them again from PoCL's (its default, with no binaries of cltrain's), and both
 * write the same model, byte for byte; a mini-batch training builds what it launches too. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "test_suites.h"
#include "util.h"

enum { MAX_NAMES = 64 };

typedef struct {
    char name[MAX_NAMES][64];
    int n;
} name_set;

static bool set_has(const name_set *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->name[i], name) == 0) return true;
    return false;
}

static void set_add(name_set *s, const char *name)
{
    if (set_has(s, name)) return;
    ck_assert_int_lt(s->n, MAX_NAMES);
    snprintf(s->name[s->n++], sizeof s->name[0], "%s", name);
}

/* From --profile's output: the kernels launched (the rows of its kernel table) into launched,
 * the kernels of every program into built; returns the program count and counts the programs
 * loaded from the cache into *cached. */
static int read_profile(const char *out, name_set *launched, name_set *built, int *cached,
                        name_set *files)
{
    const char *t = strstr(out, "\nkernel ");
    ck_assert_msg(t != NULL, "no kernel table in:\n%s", out);
    t = strchr(t + 1, '\n');
    for (const char *line = t + 1; *line && strncmp(line, "all kernels", 11) != 0;) {
        char name[64];
        unsigned long long calls;
        ck_assert_msg(sscanf(line, "%63s %llu", name, &calls) == 2, "row: %.80s", line);
        if (name[0] != '[' && calls > 0) set_add(launched, name);
        const char *nl = strchr(line, '\n');
        if (!nl) break;
        line = nl + 1;
    }
    const char *p = strstr(out, "\nprograms: ");
    ck_assert_msg(p != NULL, "no program list in:\n%s", out);
    int n = 0, compiled = 0, from_cache = 0;
    ck_assert_int_eq(sscanf(p, "\nprograms: %d (%d compiled, %d from the cache)", &n, &compiled,
                            &from_cache), 3);
    ck_assert_int_eq(compiled + from_cache, n);
    *cached = from_cache;
    const char *line = strchr(p + 1, '\n') + 1;
    for (int i = 0; i < n; i++) {
        const char *open = strchr(line, '['), *close = open ? strchr(open, ']') : NULL;
        const char *nl = strchr(line, '\n');
        ck_assert_msg(open && close && nl && close < nl, "program line: %.120s", line);
        char file[64];
        ck_assert_int_eq(sscanf(line, " %63s", file), 1);
        /* One program per layer and file: these networks' layers read different files. */
        ck_assert_msg(!set_has(files, file), "a second program of %s: %.160s", file, line);
        set_add(files, file);
        char list[512];
        snprintf(list, sizeof list, "%.*s", (int)(close - open - 1), open + 1);
        ck_assert_msg(strcmp(list, "every kernel") != 0, "a whole file was built: %.120s", line);
        for (char *tok = strtok(list, " "); tok; tok = strtok(NULL, " ")) set_add(built, tok);
        line = nl + 1;
    }
    return n;
}

/* The files under dir (all its folders) whose names end in suffix. */
static int files_ending(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    size_t ls = strlen(suffix);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        DIR *sub = opendir(path);
        if (sub) {
            closedir(sub);
            n += files_ending(path, suffix);
        } else {
            size_t l = strlen(e->d_name);
            n += l >= ls && strcmp(e->d_name + l - ls, suffix) == 0;
        }
    }
    closedir(d);
    return n;
}

/* The model files a and b are the same, byte for byte. */
static void assert_same_model(const char *a_path, const char *b_path, const char *why)
{
    size_t na = 0, nb = 0;
    unsigned char *a = read_file(a_path, &na), *b = read_file(b_path, &nb);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(na, nb);
    ck_assert_msg(memcmp(a, b, na) == 0, "%s", why);
    free(a);
    free(b);
}

/* Every name of a is in b. */
static void assert_within(const name_set *a, const char *an, const char *bn, const name_set *b)
{
    for (int i = 0; i < a->n; i++)
        ck_assert_msg(set_has(b, a->name[i]), "%s %s but not %s", a->name[i], an, bn);
}

START_TEST(test_cold_then_warm)
{
    const char *dir = bin_dir();
    char env[256], args[1400], cold[600], warm[600];
    /* cltrain's binary cache: PoCL's own is off (with it on, test_pocl_keeps_kernels). */
    snprintf(env, sizeof env, "POCL_KERNEL_CACHE=0 XDG_CACHE_HOME=%s/cache", dir);
    snprintf(cold, sizeof cold, "%s/cold.model", dir);
    snprintf(warm, sizeof warm, "%s/warm.model", dir);

    name_set launched = {0}, built = {0}, files = {0};
    int cached = -1;
    snprintf(args, sizeof args, "--data %s --epochs 1 --profile --save %s", mnist_dir(), cold);
    ck_assert_msg(bin_run_env(env, args) == 0, "%s", bin_err());
    int programs = read_profile(bin_out(), &launched, &built, &cached, &files);
    ck_assert_int_eq(cached, 0);
    /* Exactly the launched kernels were built: none missing (they were launched), none extra. */
    assert_within(&launched, "was launched", "built", &built);
    assert_within(&built, "was built", "launched", &launched);
    /* The seed's full batch: sparse_step (the evaluation's too), its sum with the update, and
     * reduce_stats (a parse that lost rows shows here), all from one program: sparse_step.cl's,
     * which holds the statistics sum too. */
    ck_assert_int_ge(launched.n, 3);
    ck_assert_int_eq(programs, 1);

    name_set launched2 = {0}, built2 = {0}, files2 = {0};
    snprintf(args, sizeof args, "--data %s --epochs 1 --profile --save %s", mnist_dir(), warm);
    ck_assert_msg(bin_run_env(env, args) == 0, "%s", bin_err());
    ck_assert_int_eq(read_profile(bin_out(), &launched2, &built2, &cached, &files2), programs);
    ck_assert_int_eq(cached, programs);
    ck_assert_int_eq(built2.n, built.n);
    assert_within(&built, "was built cold", "warm", &built2);

    assert_same_model(cold, warm, "the model from cached programs differs");
}
END_TEST

/* With PoCL's kernel cache on (its default), cltrain writes no binaries of its own: taking one
 * from PoCL costs a compile of every kernel, and PoCL finds its compiled kernels again itself.
 * The second run builds the same programs and trains the same model. */
START_TEST(test_pocl_keeps_kernels)
{
    const char *dir = bin_dir();
    char env[256], args[1400], path[700];
    snprintf(env, sizeof env, "XDG_CACHE_HOME=%s/cache-pocl", dir);
    int programs[2], cached = -1;
    for (int run = 0; run < 2; run++) {
        name_set launched = {0}, built = {0}, files = {0};
        snprintf(args, sizeof args, "--data %s --epochs 1 --profile --save %s/pocl%d.model",
                 mnist_dir(), dir, run);
        ck_assert_msg(bin_run_env(env, args) == 0, "%s", bin_err());
        ck_assert_msg(strstr(bin_out(), "kernels cached by PoCL itself"), "%s", bin_out());
        programs[run] = read_profile(bin_out(), &launched, &built, &cached, &files);
        ck_assert_int_eq(cached, 0);
        assert_within(&launched, "was launched", "built", &built);
        assert_within(&built, "was built", "launched", &launched);
    }
    ck_assert_int_eq(programs[1], programs[0]);
    snprintf(path, sizeof path, "%s/cache-pocl/cltrain", dir);
    ck_assert_int_eq(files_ending(path, ".bin"), 0);
    snprintf(path, sizeof path, "%s/cache-pocl/pocl", dir);
    ck_assert_int_gt(files_ending(path, ""), 0);
    char a_path[700], b_path[700];
    snprintf(a_path, sizeof a_path, "%s/pocl0.model", dir);
    snprintf(b_path, sizeof b_path, "%s/pocl1.model", dir);
    assert_same_model(a_path, b_path, "the second run's model differs");
}
END_TEST

/* A mini-batch training (the scatter weight gradient, no sum of slices in the hidden layer's
 * program) also builds exactly what it launches, one program per layer and file. */
START_TEST(test_minibatch_builds_what_it_launches)
{
    char env[256], args[1400];
    snprintf(env, sizeof env, "XDG_CACHE_HOME=%s/cache-batch", bin_dir());
    snprintf(args, sizeof args, "--data %s --epochs 1 --batch 64 --hidden 16 --train-limit 3000 "
             "--test-limit 500 --optimizer adam --profile", mnist_dir());
    ck_assert_msg(bin_run_env(env, args) == 0, "%s", bin_err());
    name_set launched = {0}, built = {0}, files = {0};
    int cached = -1;
    read_profile(bin_out(), &launched, &built, &cached, &files);
    ck_assert_int_eq(cached, 0);
    assert_within(&launched, "was launched", "built", &built);
    assert_within(&built, "was built", "launched", &launched);
}
END_TEST

Suite *startup_suite(void)
{
    Suite *s = suite_create("startup");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    bin_fixture(tc);
    tcase_add_test(tc, test_cold_then_warm);
    tcase_add_test(tc, test_pocl_keeps_kernels);
    tcase_add_test(tc, test_minibatch_builds_what_it_launches);
    suite_add_tcase(s, tc);
    return s;
}
