/* A guest that faults with no trap table: the domain is crashed with the reason logged. */
#include "runtime/pv.h"

void test_main(void) {
  print("about to fault\n");
  *(volatile int *)0 = 1;
  print("not reached\n");
}
