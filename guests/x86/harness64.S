/*
 * x86-64 half of the test-kernel harness: trap stubs, try_call/try_user_raw and the
 * unwinding used by the trap handler. See harness.h.
 */
  .text
  .code64

  .macro STUB vec
trap_stub_\vec:
  .if (\vec == 8) || (\vec == 10) || (\vec == 11) || (\vec == 12) || (\vec == 13) || (\vec == 14) || (\vec == 17) || (\vec == 21)
  .else
  push $0
  .endif
  push $\vec
  jmp trap_common
  .endm

  .altmacro
  .set vec, 0
  .rept 256
  STUB %vec
  .set vec, vec + 1
  .endr

trap_common:
  push %rax
  push %rcx
  push %rdx
  push %rbx
  push %rbp
  push %rsi
  push %rdi
  push %r8
  push %r9
  push %r10
  push %r11
  push %r12
  push %r13
  push %r14
  push %r15
  mov %rsp, %rdi
  call trap_handler
  pop %r15
  pop %r14
  pop %r13
  pop %r12
  pop %r11
  pop %r10
  pop %r9
  pop %r8
  pop %rdi
  pop %rsi
  pop %rbp
  pop %rbx
  pop %rdx
  pop %rcx
  pop %rax
  add $16, %rsp
  iretq

  .macro STUB_ADDR vec
  .quad trap_stub_\vec
  .endm
  .section .rodata
  .balign 8
  .globl trap_stubs
trap_stubs:
  .set vec, 0
  .rept 256
  STUB_ADDR %vec
  .set vec, vec + 1
  .endr
  .noaltmacro

  .text
/* u32 try_call(void (*fn)(uptr), uptr arg) */
  .globl try_call
try_call:
  push %rbp
  push %rbx
  push %r12
  push %r13
  push %r14
  push %r15
  sub $8, %rsp /* keep the stack 16-byte aligned for the call */
  mov %rsp, try_saved_sp(%rip)
  mov %rdi, %rax
  mov %rsi, %rdi
  call *%rax
  mov $0xffffffff, %eax
try_return:
  movq $0, try_saved_sp(%rip)
  add $8, %rsp
  pop %r15
  pop %r14
  pop %r13
  pop %r12
  pop %rbx
  pop %rbp
  ret

/* void try_unwind(u32 vector): called by the trap handler; never returns. */
  .globl try_unwind
try_unwind:
  mov %edi, %eax
  mov try_saved_sp(%rip), %rsp
  mov $0x10, %ecx
  mov %ecx, %ss
  jmp try_return

/* u32 try_user_raw(void (*fn)(uptr), uptr arg): try_call of user_enter (0x81 = fn returned). */
  .globl try_user_raw
try_user_raw:
  mov %rdi, user_fn(%rip)
  mov %rsi, user_arg(%rip)
  lea user_enter(%rip), %rdi
  xor %esi, %esi
  jmp try_call

user_enter: /* (ring 0) iretq to user_start at CPL 3 on the user stack */
  lea user_stack_top(%rip), %rdx
  sub $16, %rdx
  mov user_fn(%rip), %rcx
  mov %rcx, (%rdx)
  mov user_arg(%rip), %rcx
  mov %rcx, 8(%rdx)
  mov user_cs(%rip), %rcx
  push $0x23
  push %rdx
  pushf
  andq $~0x4000, (%rsp)
  push %rcx
  lea user_start(%rip), %rcx
  push %rcx
  iretq

user_start: /* CPL 3 (64-bit code): fn(arg), then back to ring 0 through int USER_DONE */
  pop %rax
  pop %rdi
  call *%rax
  int $0x81
  ud2

  .data
  .balign 8
  .globl try_saved_sp
try_saved_sp: .quad 0
user_fn: .quad 0
user_arg: .quad 0
  .globl user_cs
user_cs: .quad 0x2b

  .bss
  .balign 16
  .skip 16384
  .globl user_stack_top
user_stack_top:
  .skip 16384
  .globl kernel_trap_stack_top
kernel_trap_stack_top:
  .skip 8192
  .globl ist1_stack_top
ist1_stack_top:
