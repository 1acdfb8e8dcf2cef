/*
 * cli_internal.h - helpers shared by the commands in src/cli/.
 */
#ifndef MUNIM_CLI_INTERNAL_H
#define MUNIM_CLI_INTERNAL_H

#include <stdint.h>

#include "core/config.h"
#include "store/store.h"

/* The settings `serve` takes (also what `config --dump` shows). */
extern const char *const cli_serve_opts[];

/* Settings every store-using command takes. */
#define CLI_STORE_OPTS "db", "db-prepare", "log-level"

/*
 * cli_setup parses argv for cmd (config_parse) and applies the log level.
 * Returns 0 to go on, 1 when help was printed (exit 0), < 0 on a bad
 * argument (exit 2).
 */
int cli_setup(struct config *cfg, const char *cmd, const char *usage, const char *const *names,
              int argc, char **argv, char **pos, int max_pos, int *npos);

/*
 * cli_open opens the store at cfg->db and connects; with migrate set it
 * also applies pending migrations. Prints a clear error and returns < 0 on
 * failure. Release with cli_close.
 */
int cli_open(const struct config *cfg, int migrate, struct store **st, struct store_conn **c);
void cli_close(struct store *st, struct store_conn *c);

/*
 * cli_parse_scaled parses a non-negative decimal ("2", "2.5", "0.125") and
 * multiplies it by scale exactly; ERR_INVAL if it has more decimals than
 * the scale can hold, is negative, or overflows.
 */
int cli_parse_scaled(const char *s, int64_t scale, int64_t *out);

#endif
