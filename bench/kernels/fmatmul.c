/*
 * The floating-point benchmark workload f: double-precision matrix multiply. Per round, C =
 * A x B for 64x64 matrices (i-k-j order, so the inner loop is a load, a multiply, an add and
 * a store per element), then A = C scaled back, so rounds depend on each other. The result is
 * the checksum: the sum of C's elements after the last round, as the 64-bit pattern of the
 * double. Shared by the guest kernel (bench.c) and the native host program (fnative.c), and
 * recomputed in bench/run.ts (JavaScript doubles are IEEE binary64 with the same roundings),
 * so the checksum checks the emulated SSE2 arithmetic bit for bit. (A translation unit of its
 * own in the guest build, so the build cache sees it; fnative.c includes it.)
 *
 * Compiled with SSE2 floating point whatever the rest of the kernel uses (-mgeneral-regs-only):
 * the guest enables the FPU and SSE (CR0, CR4) before running it.
 */
#define F_N 64

#pragma GCC push_options
#pragma GCC target("sse2,fpmath=sse")

static double f_a[F_N * F_N], f_b[F_N * F_N], f_c[F_N * F_N];

static void f_init(void) {
  for (int i = 0; i < F_N; i++) {
    for (int j = 0; j < F_N; j++) {
      f_a[i * F_N + j] = (double)((i * 7 + j * 3) % 17) / 8.0 - 1.0;
      f_b[i * F_N + j] = (double)((i * 5 + j * 11) % 13) / 16.0 + 0.0625;
    }
  }
}

/* Returns the checksum's bit pattern (low and high words) after `rounds` rounds. The i386
 * kernel's stack is only 4-byte aligned, and gcc's SSE code spills with MOVAPS: realign. */
void f_workload(unsigned rounds, unsigned *lo, unsigned *hi);
__attribute__((force_align_arg_pointer, noinline)) void f_workload(unsigned rounds, unsigned *lo, unsigned *hi) {
  f_init();
  for (unsigned r = 0; r < rounds; r++) {
    for (int i = 0; i < F_N * F_N; i++) f_c[i] = 0.0;
    for (int i = 0; i < F_N; i++) {
      for (int k = 0; k < F_N; k++) {
        double aik = f_a[i * F_N + k];
        double *ci = &f_c[i * F_N];
        const double *bk = &f_b[k * F_N];
        for (int j = 0; j < F_N; j++) ci[j] += aik * bk[j];
      }
    }
    for (int i = 0; i < F_N * F_N; i++) f_a[i] = f_c[i] * 0.03125 - 0.5;
  }
  double sum = 0.0;
  for (int i = 0; i < F_N * F_N; i++) sum += f_c[i];
  union {
    double d;
    unsigned w[2];
  } u;
  u.d = sum;
  *lo = u.w[0];
  *hi = u.w[1];
}

#if defined(__i386__)
/*
 * The x workload (i386 only): the same computation with the inner loop in x87 code, run with
 * the precision control at 53 bits (FCW 027Fh), so every operation rounds exactly like SSE2's
 * and the checksum is the f workload's.
 */
static void x87_row(double *ci, const double *bk, const double *aik, int n) {
  __asm__ volatile(
      "fldl (%2)\n"
      "1:\n"
      "fldl (%1)\n"
      "fmul %%st(1), %%st\n"
      "faddl (%0)\n"
      "fstpl (%0)\n"
      "add $8, %0\n"
      "add $8, %1\n"
      "dec %3\n"
      "jnz 1b\n"
      "fstp %%st(0)\n"
      : "+r"(ci), "+r"(bk), "+r"(aik), "+r"(n)
      :
      : "memory", "cc");
}

void x_workload(unsigned rounds, unsigned *lo, unsigned *hi);
__attribute__((force_align_arg_pointer, noinline)) void x_workload(unsigned rounds, unsigned *lo, unsigned *hi) {
  static const unsigned short cw = 0x027f;
  __asm__ volatile("fldcw %0" : : "m"(cw));
  f_init();
  for (unsigned r = 0; r < rounds; r++) {
    for (int i = 0; i < F_N * F_N; i++) f_c[i] = 0.0;
    for (int i = 0; i < F_N; i++)
      for (int k = 0; k < F_N; k++) x87_row(&f_c[i * F_N], &f_b[k * F_N], &f_a[i * F_N + k], F_N);
    for (int i = 0; i < F_N * F_N; i++) f_a[i] = f_c[i] * 0.03125 - 0.5;
  }
  double sum = 0.0;
  for (int i = 0; i < F_N * F_N; i++) sum += f_c[i];
  union {
    double d;
    unsigned w[2];
  } u;
  u.d = sum;
  *lo = u.w[0];
  *hi = u.w[1];
}
#endif

#pragma GCC pop_options
