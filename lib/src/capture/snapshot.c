/* capture/snapshot.c — the environment snapshot of this process: the
 * categories of capture/env.c and git, captured once, hashed, and handed to
 * every trial. */
#include "capture/snapshot.h"

#include "capture/env.h"
#include "capture/git.h"
#include "util/hash.h"

#include <pthread.h>
#include <stdbool.h>

/* The process environment is captured once per process. An experiment
 * opened for writing starts it: the categories that read no environment
 * variables on a background thread, git (libgit2 reads GIT_DIR, HOME...)
 * in the opening thread itself, since getenv racing a setenv of the
 * program's would be undefined. The first trial waits for whatever is
 * left; a program that never opened for writing captures all inline.
 * fork() waits for a capture in flight: a child must not inherit this
 * state half-made. */
enum { S_ENV_NONE, S_ENV_RUNNING, S_ENV_DONE };
static pthread_mutex_t s_env_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t s_env_cond = PTHREAD_COND_INITIALIZER;
static pthread_once_t s_env_atfork_once = PTHREAD_ONCE_INIT;
static int s_env_state;
static bool s_env_joinable;
static pthread_t s_env_thread;
static bson_t s_env;
static char s_env_hash[33];
/* Parts of a prefetch, until both are in (under s_env_lock). */
static bson_t *s_part_local, *s_part_gpu, *s_part_git;

static void s_env_wait_locked(void)
{
    while (s_env_state == S_ENV_RUNNING)
        pthread_cond_wait(&s_env_cond, &s_env_lock);
}

/* Publishes env as the process environment (s_env_lock held). */
static void s_env_publish_locked(bson_t *env)
{
    xp__hash_hex(env, s_env_hash);
    bson_steal(&s_env, env);
    s_env_state = S_ENV_DONE;
    pthread_cond_broadcast(&s_env_cond);
}

/* Assembles the parts once both are in (s_env_lock held). */
static void s_env_parts_locked(void)
{
    if (!s_part_local || !s_part_git)
        return;
    bson_t env = BSON_INITIALIZER;
    xp__environment_assemble(&env, s_part_local, s_part_git, s_part_gpu);
    bson_destroy(s_part_local);
    bson_destroy(s_part_gpu);
    bson_destroy(s_part_git);
    s_part_local = s_part_gpu = s_part_git = NULL;
    s_env_publish_locked(&env);
}

static void s_env_local(void)
{
    bson_t *local = bson_new(), *gpu = bson_new();
    xp__environment_local(local, gpu, NULL);
    pthread_mutex_lock(&s_env_lock);
    s_part_local = local;
    s_part_gpu = gpu;
    s_env_parts_locked();
    pthread_mutex_unlock(&s_env_lock);
}

static void *s_env_main(void *arg)
{
    (void)arg;
    s_env_local();
    return NULL;
}

static void s_env_prepare(void)
{
    pthread_mutex_lock(&s_env_lock);
    s_env_wait_locked();
}

static void s_env_parent(void)
{
    pthread_mutex_unlock(&s_env_lock);
}

static void s_env_child(void)
{
    s_env_joinable = false; /* the thread is the parent's */
    pthread_mutex_unlock(&s_env_lock);
}

static void s_env_atfork(void)
{
    pthread_atfork(s_env_prepare, s_env_parent, s_env_child);
}

/* Joins the background capture thread at exit. */
__attribute__((destructor)) static void s_env_fini(void)
{
    if (s_env_joinable) {
        pthread_join(s_env_thread, NULL);
        s_env_joinable = false;
    }
}

void xp__environment_prefetch(void)
{
    pthread_once(&s_env_atfork_once, s_env_atfork);
    pthread_mutex_lock(&s_env_lock);
    if (s_env_state != S_ENV_NONE) {
        pthread_mutex_unlock(&s_env_lock);
        return;
    }
    s_env_state = S_ENV_RUNNING;
    xp__environment_prepare(); /* its getenv, before the thread */
    bool threaded = pthread_create(&s_env_thread, NULL, s_env_main, NULL) == 0;
    s_env_joinable = threaded;
    pthread_mutex_unlock(&s_env_lock);
    if (!threaded)
        s_env_local();
    bson_t *git = bson_new();
    xp__git_capture(git);
    pthread_mutex_lock(&s_env_lock);
    s_part_git = git;
    s_env_parts_locked();
    pthread_mutex_unlock(&s_env_lock);
}

const bson_t *xp__environment(const char **hash)
{
    pthread_once(&s_env_atfork_once, s_env_atfork);
    pthread_mutex_lock(&s_env_lock);
    s_env_wait_locked();
    bool mine = s_env_state == S_ENV_NONE;
    if (mine)
        s_env_state = S_ENV_RUNNING;
    pthread_mutex_unlock(&s_env_lock);
    if (mine) {
        bson_t env = BSON_INITIALIZER;
        xp__environment_capture(&env, NULL);
        pthread_mutex_lock(&s_env_lock);
        s_env_publish_locked(&env);
        pthread_mutex_unlock(&s_env_lock);
    }
    if (hash)
        *hash = s_env_hash;
    return &s_env;
}
