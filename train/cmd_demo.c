#include "train/cli.h"
static const vt_opt opts[] = {{NULL, 0, NULL, NULL}};
static int run(const vt_args *a) { (void)a; return 0; }
const vt_cmd vt_cmd_demo = {"demo", "placeholder", NULL, opts, run};
