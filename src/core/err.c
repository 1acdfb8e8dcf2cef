/*
 * err.c - names for the ERR_* codes of err.h.
 */
#include "core/err.h"

const char *err_str(int err)
{
	switch (err) {
	case ERR_OK: return "success";
	case ERR_INVAL: return "invalid argument";
	case ERR_IO: return "input/output error";
	case ERR_AGAIN: return "resource busy, try again";
	case ERR_TIMEOUT: return "timed out";
	case ERR_PROTO: return "protocol error";
	case ERR_FULL: return "no space left";
	case ERR_NOTFOUND: return "not found";
	case ERR_CONFLICT: return "conflict";
	case ERR_DB: return "database error";
	case ERR_NOMEM: return "out of memory";
	case ERR_AUTH: return "authentication failed";
	case ERR_TOOBIG: return "too large";
	default: return "unknown error";
	}
}

int err_transient(int err)
{
	return err == ERR_IO || err == ERR_AGAIN || err == ERR_TIMEOUT || err == ERR_FULL;
}
