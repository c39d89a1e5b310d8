/* A CPU-bound guest for the scheduler tests. It never blocks or yields: events stay masked
 * (start of day), so nothing but the scheduler takes the CPU from it.
 *
 * Command line (start_info->cmd_line):
 *   (empty)     spin for ever, counting loop iterations in `spins`.
 *   runs=N      watch system time while spinning; a jump of more than 50 us means another
 *               vCPU ran. Report the length of each of the next N whole stretches of running
 *               ("run K: T ns, then off for G ns"), then spin on silently. The first,
 *               partial stretch (from boot) is not reported. */
#include "runtime/pv.h"

volatile unsigned long spins;

void test_main(void) {
  unsigned long runs = cmdline_ulong("runs", 0);
  print("spinning\n");
  if (runs == 0)
    for (;;) spins++;
  unsigned long long last = now_ns(), start = last;
  unsigned long seen = 0;
  int whole = 0; /* the stretch in progress started after a gap */
  while (seen < runs) {
    for (int i = 0; i < 1000; i++) spins++; /* a few us between looks at the clock */
    unsigned long long t = now_ns();
    if (t - last > 50000) {
      if (whole) printf("run %lu: %llu ns, then off for %llu ns\n", ++seen, last - start, t - last);
      whole = 1;
      start = t;
    }
    last = t;
  }
  for (;;) spins++;
}
