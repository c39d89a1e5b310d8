/*
 * The f workload (fmatmul.c) as a host program, for bench/run.ts's comparison with native
 * speed: `fnative ROUNDS [x]` prints "seconds checksum-hi checksum-lo" (x: the x87 variant, i386).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "fmatmul.c"

int main(int argc, char **argv) {
  unsigned rounds = argc > 1 ? (unsigned)atoi(argv[1]) : 1;
  unsigned lo, hi;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
#if defined(__i386__)
  if (argc > 2 && argv[2][0] == 'x') x_workload(rounds, &lo, &hi);
  else
#endif
    f_workload(rounds, &lo, &hi);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("%.6f %08x %08x\n", (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9, hi, lo);
  return 0;
}
