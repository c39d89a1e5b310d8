/*
 * The benchmark kernel (built for i386 with paging on, and for x86-64 in long mode). The
 * command line picks one workload and its size:
 *   workload=r|m|c|s  iterations=N (r, m, c)  rounds=N (s)
 * The workload runs between two writes to the benchmark marker port; bench/run.ts reads the
 * retired-instruction count and the time at each. The kernel then prints a result line and
 * exits with code 0, or prints why and exits with code 1.
 *
 * s is a mixed integer workload: per round, fill 1 MiB with xorshift32 numbers, take their
 * CRC-32 (table-driven, reflected, polynomial 0xEDB88320), and sort them with quicksort
 * (median of three, insertion sort below 16 elements). Round k uses seed 0x12345678 + k. It
 * prints the XOR of the rounds' CRCs, which bench/run.ts recomputes to check the CPU's work.
 *
 * f is the floating-point workload (fmatmul.c: double-precision 64x64 matrix multiplies, SSE2
 * code); x (i386 only) is the same with an x87 inner loop. The kernel turns on the FPU and SSE
 * first. It prints the checksum's bit pattern.
 */
#include "machine.h"

/* fmatmul.c */
void f_workload(u32 rounds, u32 *lo, u32 *hi);
void x_workload(u32 rounds, u32 *lo, u32 *hi);

/* CR0: EM off, MP and NE on; CR4: OSFXSR and OSXMMEXCPT; then FNINIT. */
static void fpu_enable(void) {
  uptr cr0, cr4;
  __asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
  cr0 = (cr0 & ~(uptr)0xc) | 0x22;
  __asm__ volatile("mov %0, %%cr0" : : "r"(cr0));
  __asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
  cr4 |= 0x600;
  __asm__ volatile("mov %0, %%cr4" : : "r"(cr4));
  __asm__ volatile("fninit");
}

void loop_r(u32 iterations);
void loop_m(u32 iterations, u32 *buffer);
void loop_c(u32 iterations);

#define S_WORDS (1024 * 1024 / 4)

static u32 buffer16k[4096] __attribute__((aligned(4096)));
static u32 sort_data[S_WORDS];
static u32 crc_table[256];

static void crc_init(void) {
  for (u32 i = 0; i < 256; i++) {
    u32 c = i;
    for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    crc_table[i] = c;
  }
}

static u32 crc32(const u8 *p, u32 n) {
  u32 c = 0xffffffffu;
  while (n--) c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

static void insertion_sort(u32 *a, long n) {
  for (long i = 1; i < n; i++) {
    u32 v = a[i];
    long j = i - 1;
    while (j >= 0 && a[j] > v) {
      a[j + 1] = a[j];
      j--;
    }
    a[j + 1] = v;
  }
}

static void quicksort(u32 *a, long n) {
  while (n > 16) {
    u32 x = a[0], y = a[n / 2], z = a[n - 1];
    u32 pivot = x < y ? (y < z ? y : x < z ? z : x) : (x < z ? x : y < z ? z : y);
    long i = 0, j = n - 1;
    for (;;) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i >= j) break;
      u32 t = a[i];
      a[i] = a[j];
      a[j] = t;
      i++;
      j--;
    }
    /* Recurse into the smaller half, loop on the larger: stack depth stays O(log n). */
    if (j + 1 < n - j - 1) {
      quicksort(a, j + 1);
      a += j + 1;
      n -= j + 1;
    } else {
      quicksort(a + j + 1, n - j - 1);
      n = j + 1;
    }
  }
  insertion_sort(a, n);
}

static u32 s_workload(u32 rounds) {
  u32 crcs = 0;
  crc_init();
  for (u32 r = 0; r < rounds; r++) {
    u32 x = 0x12345678u + r;
    for (u32 i = 0; i < S_WORDS; i++) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      sort_data[i] = x;
    }
    crcs ^= crc32((const u8 *)sort_data, sizeof sort_data);
    quicksort(sort_data, S_WORDS);
  }
  return crcs;
}

/* Finds "key=" in the command line and parses the decimal number after it. */
static int option(const char *cmdline, const char *key, u32 *value) {
  uptr len = strlen(key);
  for (const char *p = cmdline; *p; p++) {
    if ((p == cmdline || p[-1] == ' ') && strncmp(p, key, len) == 0 && p[len] == '=') {
      const char *q = p + len + 1;
      u32 v = 0;
      if (*q < '0' || *q > '9') return 0;
      while (*q >= '0' && *q <= '9') v = v * 10 + (u32)(*q++ - '0');
      *value = v;
      return 1;
    }
  }
  return 0;
}

u32 kmain(u32 magic, struct multiboot_info *info) {
  serial_init();
  if (magic != MULTIBOOT_BOOTLOADER_MAGIC || !(info->flags & (1u << 2))) {
    print("bench: no Multiboot command line\n");
    return 1;
  }
#if defined(__i386__)
  paging_enable_identity();
#endif
  const char *cmdline = (const char *)(uptr)info->cmdline;
  const char *arch = sizeof(uptr) == 8 ? "64" : "32";
  u32 workload_key = 0;
  for (const char *p = cmdline; *p; p++) {
    if (strncmp(p, "workload=", 9) == 0) {
      workload_key = (u8)p[9];
      break;
    }
  }
  u32 n = 0;
  switch (workload_key) {
    case 'r':
    case 'm':
    case 'c':
      if (!option(cmdline, "iterations", &n) || n == 0) {
        print("bench: iterations=N (N >= 1) is required\n");
        return 1;
      }
      if (workload_key == 'r') loop_r(n);
      else if (workload_key == 'm') loop_m(n, buffer16k);
      else loop_c(n);
      printf("bench: %c%s done, %u iterations\n", (char)workload_key, arch, n);
      return 0;
    case 's': {
      if (!option(cmdline, "rounds", &n) || n == 0) n = 1;
      marker(1);
      u32 crcs = s_workload(n);
      marker(2);
      for (u32 i = 1; i < S_WORDS; i++) {
        if (sort_data[i - 1] > sort_data[i]) {
          printf("bench: s%s sort is wrong at index %u\n", arch, i);
          return 1;
        }
      }
      printf("bench: s%s done, %u rounds, crc 0x%08x\n", arch, n, crcs);
      return 0;
    }
    case 'f':
    case 'x': {
      if (!option(cmdline, "rounds", &n) || n == 0) n = 1;
      fpu_enable();
      u32 lo, hi;
      marker(1);
#if defined(__i386__)
      if (workload_key == 'x') x_workload(n, &lo, &hi);
      else
#endif
        f_workload(n, &lo, &hi);
      marker(2);
      printf("bench: %c%s done, %u rounds, checksum 0x%08x%08x\n", (char)workload_key, arch, n, hi, lo);
      return 0;
    }
    default:
      printf("bench: unknown workload in \"%s\" (want workload=r|m|c|s|f)\n", cmdline);
      return 1;
  }
}
