/* proc.c: child processes for the benchmark (the peers in Python, the real cltrain binary for
 * the start-up figures, git), temporary folders. */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

extern char **environ;

/* The caller's environment less the names in env[], plus those of env[] that have a value. */
static char **child_environment(const env_change *env, int n_env)
{
    size_t n = 0;
    while (environ && environ[n]) n++;
    char **out = xcalloc(n + (size_t)n_env + 1, sizeof *out, "child environment");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool drop = false;
        for (int e = 0; e < n_env; e++) {
            size_t len = strlen(env[e].name);
            if (strncmp(environ[i], env[e].name, len) == 0 && environ[i][len] == '=') drop = true;
        }
        if (!drop) out[k++] = xstrdup(environ[i]);
    }
    for (int e = 0; e < n_env; e++) {
        if (!env[e].value) continue;
        size_t len = strlen(env[e].name) + strlen(env[e].value) + 2;
        out[k] = xmalloc(len, "child environment");
        snprintf(out[k], len, "%s=%s", env[e].name, env[e].value);
        k++;
    }
    out[k] = NULL;
    return out;
}

static void free_environment(char **envp)
{
    for (size_t i = 0; envp[i]; i++) free(envp[i]);
    free(envp);
}

int proc_run(char *const argv[], const env_change *env, int n_env, char **out, double *seconds,
             bool quiet)
{
    int fd[2] = {-1, -1};
    if (out) {
        *out = NULL;
        if (pipe(fd) != 0) die(EXIT_RUNTIME, "pipe: %s", strerror(errno));
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (quiet) posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    if (out) {
        posix_spawn_file_actions_adddup2(&fa, fd[1], STDOUT_FILENO);
        posix_spawn_file_actions_addclose(&fa, fd[0]);
        posix_spawn_file_actions_addclose(&fa, fd[1]);
    }
    char **envp = child_environment(env, n_env);
    fflush(NULL);
    pid_t pid;
    double t0 = now_seconds();
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    free_environment(envp);
    if (out) close(fd[1]);
    if (rc != 0) {
        if (out) close(fd[0]);
        if (seconds) *seconds = 0;
        return -1;
    }
    if (out) {
        size_t cap = 4096, len = 0;
        char *buf = xmalloc(cap, "child output");
        for (;;) {
            if (len + 1024 >= cap) buf = xrealloc(buf, cap *= 2, "child output");
            ssize_t got = read(fd[0], buf + len, cap - len - 1);
            if (got < 0 && errno == EINTR) continue;
            if (got <= 0) break;
            len += (size_t)got;
        }
        buf[len] = '\0';
        close(fd[0]);
        *out = buf;
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) die(EXIT_RUNTIME, "waitpid: %s", strerror(errno));
    if (seconds) *seconds = now_seconds() - t0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool proc_line(char *const argv[], char *buf, size_t len)
{
    char *out = NULL;
    int rc = proc_run(argv, NULL, 0, &out, NULL, true);
    bool ok = rc == 0 && out && *out;
    if (ok) {
        size_t n = strcspn(out, "\r\n");
        if (n >= len) n = len - 1;
        memcpy(buf, out, n);
        buf[n] = '\0';
    }
    free(out);
    return ok;
}

void make_temp_dir(const char *tag, char *buf, size_t len)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(buf, len, "%s/cltrain-bench-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", tag);
    if (!mkdtemp(buf)) die(EXIT_RUNTIME, "cannot make a temporary folder %s: %s", buf, strerror(errno));
}

int proc_watch(char *const argv[], bool (*on_line)(void *ctx, const char *line, double seconds),
               void *ctx, double *seconds)
{
    int fd[2];
    if (pipe(fd) != 0) die(EXIT_RUNTIME, "pipe: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fd[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fd[0]);
    posix_spawn_file_actions_addclose(&fa, fd[1]);
    fflush(NULL);
    pid_t pid;
    double t0 = now_seconds();
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fd[1]);
    if (rc != 0) {
        close(fd[0]);
        *seconds = 0;
        return -1;
    }
    /* Lines are timed as they arrive: the child flushes each one (cltrain does, per epoch). */
    char line[4096];
    size_t len = 0;
    bool stopped = false;
    for (;;) {
        char c;
        ssize_t got = read(fd[0], &c, 1);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        if (c != '\n' && len + 1 < sizeof line) { line[len++] = c; continue; }
        if (c != '\n') continue;
        line[len] = '\0';
        len = 0;
        if (on_line(ctx, line, now_seconds() - t0)) {
            stopped = true;
            kill(pid, SIGTERM);
            break;
        }
    }
    close(fd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) die(EXIT_RUNTIME, "waitpid: %s", strerror(errno));
    *seconds = now_seconds() - t0;
    if (stopped) return 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
