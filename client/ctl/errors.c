/* client/ctl/errors.c — how cairnctl reports failures: "Error: <text>" on stderr, as etcdctl's
 * ExitWithError prints it, and the exit code for the caller to return. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/ctl/ctl.h"

int ctl_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fflush(stdout);
    fputs("Error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

char *ctl_call_error(const struct cl_call *call)
{
    char *text = cl_call_error_text(call);
    if (!text)
        text = strdup("cairn: out of memory");
    if (!text)
        abort(); /* not even a few bytes left */
    return text;
}

int ctl_fail_call(const struct cl_call *call)
{
    char *text = ctl_call_error(call);
    int code = ctl_fail(CTL_EXIT_ERROR, "%s", text);
    free(text);
    return code;
}
