/* cli/slurm.h — `xp slurm` (slurm.c), for xp.c's command table. */
#ifndef XP_CLI_SLURM_H
#define XP_CLI_SLURM_H

/* argv[0] is "slurm", argv[1] the subcommand. The exit status. */
int xp__cli_slurm(int argc, char **argv);

#endif /* XP_CLI_SLURM_H */
