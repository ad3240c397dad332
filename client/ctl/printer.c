/* client/ctl/printer.c — choosing the printer of a format, and writing a printer's output. */
#include "client/ctl/printer.h"

const struct ctl_printer *ctl_printer_for(enum ctl_format f)
{
    switch (f) {
    case CTL_FMT_JSON:
        return &ctl_print_json;
    case CTL_FMT_FIELDS:
        return &ctl_print_fields;
    case CTL_FMT_TABLE:
        return &ctl_print_table;
    case CTL_FMT_PROTOBUF:
        return &ctl_print_protobuf;
    case CTL_FMT_SIMPLE:
        break;
    }
    return &ctl_print_simple;
}

int ctl_print_flush(struct ctl_buf *b)
{
    int r = ctl_buf_write_stdout(b);
    bool failed = b->failed;
    ctl_buf_free(b);
    if (r < 0)
        return ctl_fail(failed ? CTL_EXIT_ERROR : CTL_EXIT_IO,
                        failed ? "out of memory" : "writing the output failed");
    return 0;
}
