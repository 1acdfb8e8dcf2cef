/*
 * err.h - the one error convention of munim.
 *
 * A fallible function returns int: 0 on success or a negative ERR_* code.
 * Codes from libraries (errno, SQLite, libpq, curl) are translated where they
 * are met; the text of the last error stays on the handle that failed.
 */
#ifndef MUNIM_ERR_H
#define MUNIM_ERR_H

enum {
	ERR_OK = 0,
	ERR_INVAL = -1,    /* bad argument or input */
	ERR_IO = -2,       /* read/write/fsync failed */
	ERR_AGAIN = -3,    /* busy or locked: try again later */
	ERR_TIMEOUT = -4,  /* gave up waiting */
	ERR_PROTO = -5,    /* a peer spoke something we do not understand */
	ERR_FULL = -6,     /* a limit or the disk is full */
	ERR_NOTFOUND = -7, /* no such row or object */
	ERR_CONFLICT = -8, /* violates a rule: duplicate, short stock, state */
	ERR_DB = -9,       /* any other database failure */
	ERR_NOMEM = -10,   /* only where aborting is not an option */
	ERR_AUTH = -11,    /* signature or token mismatch */
	ERR_TOOBIG = -12,  /* input larger than its cap */
};

/* err_str returns a static lower-case description of an ERR_* code. */
const char *err_str(int err);
/*
 * err_transient: the trouble of the store or machine (I/O, locked, timed
 * out, disk full), which the same work may pass later - not a fault of the
 * input. Such a failure is retried whole and counts no attempt against it.
 */
int err_transient(int err);

#endif
