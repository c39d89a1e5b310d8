/*
 * The r, m and c benchmark loops for x86-64 (System V calling convention), with the same shapes
 * and exact instruction counts as loops32.S, using 64-bit registers where the i386 version uses
 * 32-bit ones. Each function writes the benchmark marker (port 0xE8) just before its first
 * iteration and just after its last; the host counts iterations * per-iteration + 1
 * instructions between the two marks. `iterations` must be at least 1.
 */
#define MARK outb %al, $0xe8

  .text
/* void loop_r(u32 iterations): add; dec; jnz -- 3 instructions per iteration */
  .globl loop_r
loop_r:
  mov %edi, %ecx
  xor %eax, %eax
  mov $1, %edx
  MARK
1:
  add %rdx, %rax
  dec %rcx
  jnz 1b
  MARK
  ret

/* void loop_m(u32 iterations, u32 *buffer): load, index add, index mask, store, dec, jnz -- 6 */
  .globl loop_m
loop_m:
  mov %edi, %ecx
  xor %edx, %edx
  MARK
1:
  mov (%rsi,%rdx), %eax
  add $4, %edx
  and $0x3ffc, %edx
  mov %eax, (%rsi,%rdx)
  dec %rcx
  jnz 1b
  MARK
  ret

/* void loop_c(u32 iterations): call f; dec; jnz, f = add; ret -- 5 instructions per iteration */
  .globl loop_c
loop_c:
  mov %edi, %ecx
  xor %eax, %eax
  MARK
1:
  call add_one
  dec %rcx
  jnz 1b
  MARK
  ret
add_one:
  add $1, %rax
  ret
