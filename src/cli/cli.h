/*
 * cli.h - the commands of bin/munim (git's cmd_struct). Each takes the
 * arguments after its name and returns the process exit status.
 */
#ifndef MUNIM_CLI_H
#define MUNIM_CLI_H

int cmd_serve(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_tenant(int argc, char **argv);
int cmd_product(int argc, char **argv);
int cmd_seed(int argc, char **argv);
int cmd_outbox(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_mock_bsp(int argc, char **argv);
int cmd_say(int argc, char **argv);
int cmd_loadgen(int argc, char **argv);
int cmd_relay(int argc, char **argv);
int cmd_plan(int argc, char **argv);

#endif
