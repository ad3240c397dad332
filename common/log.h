/* common/log.h — the process log: one line per event on stderr, with a UTC timestamp and a level.
 *
 * Format: `2026-11-25T11:12:13.456Z info cairnd: ready to serve client requests`. The level is set
 * once at startup (--log-level); messages below it are dropped. */
#ifndef CAIRN_COMMON_LOG_H
#define CAIRN_COMMON_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

/* Sets the threshold. Not thread-safe: call before starting threads. */
void log_set_level(enum log_level level);

/* Parses "debug", "info", "warn", "error" (etcd's --log-level values); -1 if unknown. */
int log_level_parse(const char *s);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
