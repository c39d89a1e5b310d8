/*
 * The r, m and c benchmark loops for i386, with exact instruction counts per iteration (loop
 * control included). Each function writes the benchmark marker (port 0xE8) just before its
 * first iteration and just after its last, so the host counts exactly
 * iterations * per-iteration + 1 instructions between the two marks (the +1 is the closing
 * marker OUT itself). `iterations` must be at least 1.
 */
#define MARK outb %al, $0xe8

  .text
/* void loop_r(u32 iterations): add; dec; jnz -- 3 instructions per iteration */
  .globl loop_r
loop_r:
  push %ebx
  mov 8(%esp), %ecx
  xor %eax, %eax
  mov $1, %ebx
  MARK
1:
  add %ebx, %eax
  dec %ecx
  jnz 1b
  MARK
  pop %ebx
  ret

/* void loop_m(u32 iterations, u32 *buffer): one 32-bit load and one 32-bit store in a 16 KiB
 * buffer, two index operations, dec, jnz -- 6 instructions per iteration. Each iteration stores
 * into the slot the next one loads, so the loop carries a dependency through memory. */
  .globl loop_m
loop_m:
  push %esi
  mov 8(%esp), %ecx
  mov 12(%esp), %esi
  xor %edx, %edx
  MARK
1:
  mov (%esi,%edx), %eax
  add $4, %edx
  and $0x3ffc, %edx
  mov %eax, (%esi,%edx)
  dec %ecx
  jnz 1b
  MARK
  pop %esi
  ret

/* void loop_c(u32 iterations): call f; dec; jnz, f = add; ret -- 5 instructions per iteration */
  .globl loop_c
loop_c:
  mov 4(%esp), %ecx
  xor %eax, %eax
  MARK
1:
  call add_one
  dec %ecx
  jnz 1b
  MARK
  ret
add_one:
  add $1, %eax
  ret
