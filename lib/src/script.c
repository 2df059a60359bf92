/* script.c — script mode: an experiment program run as
 * `./prog a=1 b=2 --seed 7` records one trial and prints its result.
 * Arguments are checked completely, against the graph defined on a
 * detached experiment, before a store is opened or created. */
#include "script.h"

#include "experiment.h"
#include "remote/client.h"
#include "store/record.h"
#include "trial.h"
#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int s_parse_seed(const char *text, uint64_t *seed, xp_error_t *err)
{
    if (!text || !*text)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "--seed needs a value");
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (*end != '\0' || errno == ERANGE ||
        !(text[0] >= '0' && text[0] <= '9') || v > INT64_MAX)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "invalid --seed '%s': expected an integer from 0 "
                         "to 9223372036854775807",
                         text);
    *seed = v;
    return 0;
}

/* A trial id: a positive decimal integer. */
int xp__script_parse_trial(const char *text, uint64_t *id, xp_error_t *err)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v =
        text && text[0] >= '1' && text[0] <= '9' ? strtoull(text, &end, 10) : 0;
    if (v == 0 || *end != '\0' || errno == ERANGE || v > INT64_MAX)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "invalid trial id '%s': expected a positive integer",
                         text ? text : "");
    *id = v;
    return 0;
}

/* --reproduce [ID:]TRIAL. */
static int s_parse_reproduce(const char *value, xp_script_args *a,
                             xp_error_t *err)
{
    const char *colon = strrchr(value, ':');
    uint64_t id;
    if (colon) {
        bson_free(a->reproduce_id);
        a->reproduce_id = bson_strndup(value, (size_t)(colon - value));
        if (xp_check_id(a->reproduce_id, err) != 0)
            return -1;
        value = colon + 1;
    }
    if (xp__script_parse_trial(value, &id, err) != 0)
        return -1;
    a->reproduce = (int64_t)id;
    return 0;
}

/* Value of option `name` given as `--name=value` or `--name value`;
 * 1 matched, 0 other option, -1 missing value. */
static int s_option(const char *name, int argc, char **argv, int *i,
                    const char **value)
{
    const char *arg = argv[*i];
    size_t len = strlen(name);
    if (strncmp(arg, name, len) != 0)
        return 0;
    if (arg[len] == '=') {
        *value = arg + len + 1;
        return 1;
    }
    if (arg[len] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *value = argv[++*i];
    return 1;
}

void xp__script_args_free(xp_script_args *a)
{
    for (size_t i = 0; i < a->n; i++) {
        bson_free(a->names[i]);
        bson_free(a->values[i]);
    }
    bson_free(a->names);
    bson_free(a->values);
    bson_free(a->reproduce_id);
    memset(a, 0, sizeof *a);
}

int xp__script_parse(xp_script_args *a, int argc, char **argv, xp_error_t *err)
{
    memset(a, 0, sizeof *a);
    static const char *const options[] = {"--seed", "--backend", "--log-level",
                                          "--scheduler", "--reproduce"};
    enum { N_OPTIONS = sizeof options / sizeof *options };
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            a->help = true;
            continue;
        }
        if (strcmp(arg, "--no-memo") == 0 || strcmp(arg, "--refresh") == 0) {
            xp_memo_mode m = arg[2] == 'n' ? XP_MEMO_OFF : XP_MEMO_REFRESH;
            if (a->memo != XP_MEMO_USE && a->memo != m) {
                xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                          "--no-memo and --refresh exclude each other");
                goto fail;
            }
            a->memo = m;
            continue;
        }
        if (arg[0] == '-') {
            int matched = 0;
            const char *value = NULL;
            size_t k;
            for (k = 0; k < N_OPTIONS && !matched; k++)
                matched = s_option(options[k], argc, argv, &i, &value);
            k--;
            if (matched < 0) {
                xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                          "%s needs a value", options[k]);
                goto fail;
            }
            if (!matched) {
                xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                          "unknown option '%s'", arg);
                goto fail;
            }
            if (k == 0) {
                if (s_parse_seed(value, &a->seed, err) != 0)
                    goto fail;
                a->has_seed = true;
            } else if (k == 1) {
                a->backend = value;
            } else if (k == 2) {
                a->log_level = value;
            } else if (k == 3) {
                a->scheduler = value;
            } else if (s_parse_reproduce(value, a, err) != 0) {
                goto fail;
            }
            continue;
        }
        const char *eq = strchr(arg, '=');
        if (!eq) {
            xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                      "invalid argument '%s': expected name=value", arg);
            goto fail;
        }
        char *name = bson_strndup(arg, (size_t)(eq - arg));
        int rc = xp_check_name("parameter", name, err);
        if (rc == 0 && eq[1] == '\0')
            rc = xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                           "parameter '%s' has an empty value", name);
        for (size_t k = 0; rc == 0 && k < a->n; k++)
            if (strcmp(a->names[k], name) == 0)
                rc = xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                               "parameter '%s' is given twice", name);
        if (rc != 0) {
            bson_free(name);
            goto fail;
        }
        a->names = bson_realloc(a->names, (a->n + 1) * sizeof *a->names);
        a->values = bson_realloc(a->values, (a->n + 1) * sizeof *a->values);
        a->names[a->n] = name;
        a->values[a->n] = bson_strdup(eq + 1);
        a->n++;
    }
    return 0;
fail:
    xp__script_args_free(a);
    return -1;
}

/* The usage of a checked definition: which step is the result, and every
 * parameter (each needs a value), saying which the result does not read. */
static int s_usage(const char *prog, xp_experiment *ex, xp_error_t *err)
{
    if (xp__graph_freeze(ex, err) != 0)
        return -1;
    printf("usage: %s [name=value ...] [--seed N] [--backend DIR] "
           "[--log-level LEVEL]\n"
           "       [--scheduler tcp://HOST:PORT] [--no-memo | --refresh]\n"
           "       [--reproduce [ID:]TRIAL]\n\n"
           "Runs one trial of experiment '%s' and prints its result (step "
           "'%s').\n"
           "Values: 1 (int), 1.5 (float), true/false, null, \"text\" or "
           "text, [..] and {..} (JSON).\n"
           "--reproduce [ID:]TRIAL re-runs a recorded trial with its "
           "parameters and seed\n"
           "and compares (exit 0: reproduced, 1: not).\n"
           "--no-memo runs every pure step and reuses nothing; --refresh "
           "runs them and\nrecords their outputs for later trials.\n\n"
           "parameters:\n",
           prog, xp__experiment_id(ex), xp__graph_result(ex)->name);
    for (size_t i = 0; i < ex->n_nodes; i++) {
        xp_node *n = ex->nodes[i];
        if (!n->is_param)
            continue;
        char *def = n->def ? xp_value_to_json(n->def) : NULL;
        const char *unread = n->needed ? "" : "; the result does not read it";
        if (def)
            printf("  %-20s default %s%s\n", n->name, def, unread);
        else
            printf("  %-20s (required%s)\n", n->name, unread);
        xp_free(def);
    }
    return 0;
}

/* --scheduler: the trial of ex (defined and checked) runs on the
 * scheduler's workers, which must have this program's code (same code
 * hash); prints the result, unless *trial (may be NULL) is to get the
 * id of the finished trial instead. spec: {parameters, seed?,
 * reproduces?}. */
static int s_run_remote(const char *prog, xp_experiment *ex,
                        const xp_script_args *args, const xp_value *spec,
                        int64_t *trial)
{
    xp_client *c = NULL;
    xp_value *trials = NULL, *finished = NULL;
    int64_t *ids = NULL, batch = 0, cursor = 0;
    size_t n = 0;
    xp_error_t err;
    int status = 2;
    if (xp__graph_freeze(ex, &err) != 0)
        goto fail;
    trials = xp_value_new();
    xp_set_array(trials);
    xp_value *item = xp_array_append(trials);
    xp_set_value(item, spec);
    if (args->memo != XP_MEMO_USE)
        xp_set_int64(xp_document_set(item, "memo"), (int64_t)args->memo);
    status = 1;
    if (xp_client_connect(&c, args->scheduler, 0, &err) != 0 ||
        xp__client_submit_code(
            c, xp__experiment_id(ex), trials, xp__experiment_code_hash(ex),
            xp__experiment_code(ex), &batch, &ids, &n, &err) != 0)
        goto fail;
    xp__log(XP_LOG_INFO, "Submitted trial %lld to %s",
            n ? (long long)ids[0] : 0LL, args->scheduler);
    bool told = false;
    for (;;) {
        xp_progress p;
        xp_value_destroy(&finished);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (xp_client_wait(c, batch, &cursor, 1000, &p, &finished, &err) != 0)
            goto fail;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (xp_value_count(finished) > 0)
            break;
        if (p.waiting[0] && !told) {
            xp__log(XP_LOG_WARNING, "Trial %lld is queued: %s",
                    n ? (long long)ids[0] : 0LL, p.waiting);
            told = true;
        }
        /* Not held (an older scheduler): ask again in 2 ms. */
        if ((t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec) <
            100 * 1000 * 1000L) {
            struct timespec ts = {0, 2 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    const xp_value *r = xp_value_at(finished, 0);
    const char *st = xp_as_string(xp_value_get(r, "status"), NULL);
    if (trial) {
        *trial = xp_as_int64(xp_value_get(r, "trial_id"));
        status = 0;
    } else if (st && strcmp(st, XP_STATUS_SUCCEEDED_NAME) == 0) {
        char *json = xp_value_to_json(xp_value_get(r, "result"));
        printf("%s\n", json ? json : "null");
        xp_free(json);
        status = 0;
    } else {
        fprintf(stderr, "%s: %s\n", prog,
                xp_as_string(xp_value_get(r, "description"), NULL));
        status = 1;
    }
    goto done;
fail:
    fprintf(stderr, "%s: %s\n", prog, err.message);
done:
    xp_value_destroy(&finished);
    xp_value_destroy(&trials);
    xp_free(ids);
    xp_client_destroy(&c);
    return status;
}

/* --reproduce [ID:]TRIAL: re-runs TRIAL of ex (defined and checked) with
 * its parameters and seed, here or on --scheduler, and prints the
 * comparison; 0 reproduced, 1 not, 2 when it cannot be tried. */
static int s_reproduce(const char *prog, const xp_script_def *def,
                       xp_experiment *ex, const xp_script_args *args)
{
    xp_error_t err;
    xp_value *spec = NULL, *report = NULL;
    int64_t trial = args->reproduce, again = 0;
    int status = 2;
    if (args->n > 0 || args->has_seed) {
        xp__error(&err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                  "--reproduce takes the parameters and seed of trial %lld: "
                  "give no name=value or --seed",
                  (long long)trial);
        goto fail;
    }
    if (args->reproduce_id && strcmp(args->reproduce_id, def->id) != 0) {
        xp__error(&err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                  "--reproduce names experiment '%s', this is '%s'",
                  args->reproduce_id, def->id);
        goto fail;
    }
    xp_open_options opts = XP_OPEN_OPTIONS_INIT;
    opts.backend = args->backend;
    opts.must_exist = true;
    if (xp__experiment_attach(ex, &opts, &err) != 0 ||
        xp_reproduce_spec(ex, trial, &spec, &err) != 0)
        goto fail;
    xp_value *params = (xp_value *)xp_value_get(spec, "parameters");
    if ((def->check && def->check(def->ctx, params, &err) != 0) ||
        xp__trial_check_params(ex, params, &err) != 0)
        goto fail;
    if (args->scheduler) {
        status = s_run_remote(prog, ex, args, spec, &again);
        if (status != 0)
            goto done;
        status = 2;
    } else if (xp_reproduce_run(ex, trial, &again, &err) != 0) {
        goto fail;
    }
    if (xp_reproduce_compare(ex, trial, again, &report, &err) != 0)
        goto fail;
    char *text = xp_reproduce_text(report);
    fputs(text ? text : "", stdout);
    xp_free(text);
    status = xp_as_bool(xp_value_get(report, "reproduced")) ? 0 : 1;
    goto done;
fail:
    fprintf(stderr, "%s: %s\n", prog, err.message);
done:
    xp_value_destroy(&spec);
    xp_value_destroy(&report);
    return status;
}

static xp_node *s_define_fn(xp_experiment *ex, void *ctx)
{
    xp_define_fn define = *(xp_define_fn *)ctx;
    return define ? define(ex) : NULL;
}

int xp_main(const char *id, xp_define_fn define, int argc, char **argv)
{
    xp_script_def def = {id, s_define_fn, NULL, &define};
    return xp__script_main(&def, argc, argv);
}

int xp__script_main(const xp_script_def *def, int argc, char **argv)
{
    const char *id = def->id;
    const char *prog = argc > 0 && argv[0] ? argv[0] : "experiment";
    xp_script_args args;
    xp_error_t err;
    xp_experiment *ex = NULL;
    xp_value *overrides = NULL, *result = NULL;
    int status = 2;

    if (xp__script_parse(&args, argc, argv, &err) != 0) {
        fprintf(stderr, "%s: %s (see --help)\n", prog, err.message);
        return 2;
    }
    if (args.log_level) {
        xp_log_level level;
        if (xp_log_level_parse(args.log_level, &level, &err) != 0) {
            fprintf(stderr, "%s: %s\n", prog, err.message);
            goto done;
        }
        xp_log_set_level(level);
    }
    /* Parse every value before opening, so bad input records nothing. */
    overrides = xp_value_new();
    xp_set_document(overrides);
    for (size_t i = 0; i < args.n; i++) {
        xp_value *v = xp_document_set(overrides, args.names[i]);
        if (xp_value_parse_literal(v, args.values[i], &err) != 0) {
            fprintf(stderr, "%s: parameter '%s': %s\n", prog, args.names[i],
                    err.message);
            goto done;
        }
    }
    /* The graph is defined (once) on a detached experiment, and the
     * arguments checked against it, before a store is opened: a refused
     * invocation creates nothing. */
    if (xp__experiment_new_detached(&ex, id, &err) != 0) {
        fprintf(stderr, "%s: %s\n", prog, err.message);
        goto done;
    }
    xp_node *res = def->define(ex, def->ctx);
    if (res && !xp__graph_result(ex))
        xp_result(res);
    if (xp_experiment_check(ex, &err) != 0) {
        fprintf(stderr, "%s: %s\n", prog, err.message);
        goto done;
    }
    if (args.help) {
        if (s_usage(prog, ex, &err) != 0) {
            fprintf(stderr, "%s: %s\n", prog, err.message);
            goto done;
        }
        status = 0;
        goto done;
    }
    if (args.reproduce) {
        status = s_reproduce(prog, def, ex, &args);
        goto done;
    }
    if ((def->check && def->check(def->ctx, overrides, &err) != 0) ||
        xp__trial_check_params(ex, overrides, &err) != 0) {
        fprintf(stderr, "%s: %s\n", prog, err.message);
        goto done;
    }
    if (args.scheduler) {
        xp_value *spec = xp_value_new();
        xp_set_document(spec);
        xp_set_value(xp_document_set(spec, "parameters"), overrides);
        if (args.has_seed)
            xp_set_int64(xp_document_set(spec, "seed"), (int64_t)args.seed);
        status = s_run_remote(prog, ex, &args, spec, NULL);
        xp_value_destroy(&spec);
        goto done;
    }
    xp_open_options opts = XP_OPEN_OPTIONS_INIT;
    opts.backend = args.backend;
    if (xp__experiment_attach(ex, &opts, &err) != 0) {
        fprintf(stderr, "%s: %s\n", prog, err.message);
        goto done;
    }
    xp_run_options run = XP_RUN_OPTIONS_INIT;
    run.has_seed = args.has_seed;
    run.seed = args.seed;
    run.params = overrides;
    run.memo = args.memo;
    int64_t trial = 0;
    if (xp_compute(ex, &run, &result, &trial, &err) != 0) {
        fprintf(stderr, "%s: %s\n", prog, err.message);
        status = trial > 0 ? 1 : 2;
        goto done;
    }
    char *json = xp_value_to_json(result);
    printf("%s\n", json ? json : "null");
    xp_free(json);
    status = 0;
done:
    xp_value_destroy(&result);
    xp_value_destroy(&overrides);
    xp_experiment_destroy(&ex);
    xp__script_args_free(&args);
    return status;
}
