/* cmd/cairnctl/main.c — cairnctl, etcdctl's commands and output formats for cairn (client/ctl). */
#include "client/ctl/ctl.h"

int main(int argc, char **argv)
{
    return ctl_main(argc, argv);
}
