/* client/ctl/flags.h — command-line flags as etcdctl's (spf13/pflag) take them, and Go's value
 * syntaxes behind them.
 *
 * "--name=value", "--name value", "-n value", "-nvalue", "-n=value"; a bool flag alone means true
 * ("--prefix", "-i") and takes "=false" explicitly; "-abc" sets several one-letter bools; "--"
 * ends the flags; everything else is a positional argument, wherever it stands. Values parse as Go
 * does (strconv.ParseInt with base 0, strconv.ParseBool, time.ParseDuration) and fail with Go's
 * error texts, so the messages are etcdctl's. */
#ifndef CAIRN_CTL_FLAGS_H
#define CAIRN_CTL_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ctl_flag_type {
    CTL_FLAG_BOOL,     /* true/false */
    CTL_FLAG_STRING,   /* text */
    CTL_FLAG_INT64,    /* strconv.ParseInt(s, 0, 64) */
    CTL_FLAG_DURATION, /* time.ParseDuration, kept in nanoseconds */
    CTL_FLAG_STRINGS   /* comma-separated list; later uses append */
};

/* A flag's definition (static). */
struct ctl_flag_spec {
    const char *name;        /* long name without "--" */
    char shorthand;          /* one-letter name, or 0 */
    enum ctl_flag_type type; /* how its value parses */
    const char *def;         /* default, in the flag's own syntax ("5s", "false", "l", "a,b") */
    const char *usage;       /* one line for help */
};

/* A flag's value in one run. */
struct ctl_flag {
    const struct ctl_flag_spec *spec; /* borrowed */
    bool changed;                     /* set on the command line or from the environment */
    bool b;                           /* CTL_FLAG_BOOL */
    int64_t i;                        /* CTL_FLAG_INT64, CTL_FLAG_DURATION (ns) */
    char *s;                          /* CTL_FLAG_STRING (malloc'd) */
    char **list;                      /* CTL_FLAG_STRINGS (malloc'd strings) */
    size_t n_list;                    /* entries in list */
};

/* The flags a command accepts: its own and those it inherits. */
struct ctl_flagset {
    struct ctl_flag *v; /* malloc'd */
    size_t n;           /* entries */
};

/* Appends specs (n of them) with their defaults to fs. Returns 0 or -1 when out of memory. A name
 * already in fs is skipped (the first definition wins). */
int ctl_flagset_add(struct ctl_flagset *fs, const struct ctl_flag_spec *specs, size_t n);

/* Frees the values and the array; fs is empty afterwards. */
void ctl_flagset_free(struct ctl_flagset *fs);

/* The flag called name (long), or NULL. */
struct ctl_flag *ctl_flag_find(const struct ctl_flagset *fs, const char *name);

/* The flag with one-letter name c, or NULL. */
struct ctl_flag *ctl_flag_find_short(const struct ctl_flagset *fs, char c);

/* Sets f from text value (marks it changed). Returns 0, or -1 with *err (malloc'd) Go's error
 * text for the value alone, e.g. `strconv.ParseInt: parsing "x": invalid syntax`. */
int ctl_flag_set(struct ctl_flag *f, const char *value, char **err);

/* Parses argv (argc entries) against fs. Positional arguments are returned in *pos (a malloc'd
 * array of pointers borrowed from argv; *npos entries). *help is set when -h/--help was given
 * and fs has no flag of that name. Returns 0, or -1 with *err (malloc'd) pflag's message:
 * "unknown flag: --x", "unknown shorthand flag: 'x' in -x", "flag needs an argument: --limit",
 * `invalid argument "x" for "--limit" flag: ...`. */
int ctl_flagset_parse(struct ctl_flagset *fs, char **argv, size_t argc, char ***pos, size_t *npos,
                      char **err);

/* Typed reads of flag name, which must exist in fs with that type. */
bool ctl_flag_bool(const struct ctl_flagset *fs, const char *name);
const char *ctl_flag_str(const struct ctl_flagset *fs, const char *name);
int64_t ctl_flag_int(const struct ctl_flagset *fs, const char *name);
bool ctl_flag_changed(const struct ctl_flagset *fs, const char *name);

/* The default value as etcdctl's help shows it: "false", "\"l\"", "0", "5s", "[127.0.0.1:2379]".
 * Returns a malloc'd string or NULL when out of memory. */
char *ctl_flag_default_text(const struct ctl_flag_spec *spec);

/* ---------------------------------------------------------------------------------------------- */
/* Go's value syntaxes. Each returns 0, or -1 with *err (malloc'd) Go's error text. */

/* strconv.ParseInt(s, base, 64); base 0 reads prefixes 0x, 0o, 0b and a leading 0 (octal) and
 * allows underscores between digits, as Go does. */
int ctl_parse_int64(const char *s, int base, int64_t *out, char **err);

/* strconv.ParseUint(s, base, 64). */
int ctl_parse_uint64(const char *s, int base, uint64_t *out, char **err);

/* strconv.ParseBool: 1 t T TRUE true True, 0 f F FALSE false False. */
int ctl_parse_bool(const char *s, bool *out, char **err);

/* time.ParseDuration: "5s", "1.5h", "300ms", "-1m30s", "0"; nanoseconds. */
int ctl_parse_duration(const char *s, int64_t *ns, char **err);

#endif
