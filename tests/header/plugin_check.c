/* plugin_check.c — loads a plugin built by the header tests and checks
 * that it exports its definition the way xp-worker looks it up (a C
 * symbol named xp_plugin_experiment). Usage: plugin_check PATH ID */
#include <xp/xp.h>

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "plugin_check: %s\n", dlerror());
        return 1;
    }
    const xp_experiment_def *def = dlsym(h, "xp_plugin_experiment");
    int rc = 1;
    if (!def)
        fprintf(stderr, "plugin_check: %s exports no xp_plugin_experiment\n",
                argv[1]);
    else if (def->abi != XP_PLUGIN_ABI || !def->id ||
             strcmp(def->id, argv[2]) != 0 || !def->define)
        fprintf(stderr, "plugin_check: %s: wrong definition\n", argv[1]);
    else
        rc = 0;
    dlclose(h);
    return rc;
}
