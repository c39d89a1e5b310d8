/* The smallest PV guest: prints through console_io and powers off. */
#include "runtime/pv.h"

void test_main(void) {
  printf("Hello from a PV guest (%s), %lu pages\n", start_info->magic, (unsigned long)start_info->nr_pages);
  shutdown(SHUTDOWN_poweroff);
}
