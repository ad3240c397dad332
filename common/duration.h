/* common/duration.h — Go's time.ParseDuration, for flags that etcd's tools take as durations. */
#ifndef CAIRN_COMMON_DURATION_H
#define CAIRN_COMMON_DURATION_H

#include <stdint.h>

/* Parses a Go duration ("1.5s", "300ms", "1h2m", "0"; units ns us µs ms s m h). Returns 0 and the
 * duration in nanoseconds, or -1 when s is malformed, negative or overflows. */
int go_parse_duration(const char *s, uint64_t *ns);

#endif
