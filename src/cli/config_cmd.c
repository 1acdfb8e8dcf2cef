/*
 * config_cmd.c - `munim config --dump`: the settings serve would run with,
 * after defaults, environment and flags (secrets shown only as "(set)").
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_internal.h"

int cmd_config(int argc, char **argv)
{
	struct config cfg;
	int npos, n = 0;
	char *pos[1];
	char **args = argv;
	/* "--dump" is the (only) action; everything else is a serve option */
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "--dump") != 0)
			args[n++] = argv[i];
	int rc = cli_setup(&cfg, "config", "--dump [serve options]", cli_serve_opts, n, args, pos,
	                   0, &npos);
	if (rc != 0) {
		config_release(&cfg);
		return rc > 0 ? 0 : 2;
	}
	config_dump(stdout, &cfg, cli_serve_opts);
	config_release(&cfg);
	return 0;
}
