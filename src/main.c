/*
 * main.c - bin/munim: argv[1] picks a command from the table (git's
 * cmd_struct); the command parses the rest of argv itself.
 */
#include <stdio.h>
#include <string.h>

#include "ai/ai.h"
#include "cli/cli.h"

struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
};

static const struct cmd commands[] = {
        {"serve", cmd_serve, "run the service: webhook ingest, workers, sender"},
        {"migrate", cmd_migrate, "create or upgrade the store's schema"},
        {"tenant", cmd_tenant, "add and list businesses (tenants)"},
        {"product", cmd_product, "add, import and list a tenant's products"},
        {"seed", cmd_seed, "create demo tenants with a catalogue of everyday goods"},
        {"outbox", cmd_outbox, "list outgoing messages (--dead: dead letters)"},
        {"ocr", cmd_ocr, "photos and documents customers sent, waiting to be read"},
        {"config", cmd_config, "print the settings serve would use (--dump)"},
        {"mock-bsp", cmd_mock_bsp, "a fake WhatsApp Cloud API for tests and demos"},
        {"say", cmd_say, "write to a running munim as a customer and print the reply"},
        {"loadgen", cmd_loadgen, "open-loop load: signed webhooks at a rate, replies matched"},
        {"relay", cmd_relay, "answer webhooks and relay a reply each, storing nothing (a floor)"},
        {"plan", cmd_plan, "capacity plan: Kubernetes autoscaling manifests, a simulation of it"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
	fprintf(out, "usage: munim <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].help);
	fprintf(out, "  %-10s %s\n", "help", "this list; `munim <command> --help` for one command");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *name = argv[1];
	if (strcmp(name, "help") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
		if (argc > 2) {
			for (size_t i = 0; i < NCOMMANDS; i++) {
				if (strcmp(commands[i].name, argv[2]) == 0) {
					char *help_argv[] = {(char *)"--help", NULL};
					return commands[i].fn(1, help_argv);
				}
			}
		}
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return commands[i].fn(argc - 2, argv + 2);
	fprintf(stderr, "munim: unknown command \"%s\"\n\n", name);
	usage(stderr);
	return 2;
}
