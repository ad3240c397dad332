/* common/url.h — the host:port of an http:// URL, the form libraft's transport and the client
 * library take addresses in. */
#ifndef CAIRN_COMMON_URL_H
#define CAIRN_COMMON_URL_H

#include <stddef.h>

/* Writes the authority of url ("http://host:port[/...]", or "host:port" as it is) to out. Returns
 * 0, or -1 when it is empty or does not fit in n bytes. */
int url_host_port(const char *url, char *out, size_t n);

#endif
