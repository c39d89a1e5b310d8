/*
 * i386 half of the test-kernel harness: trap stubs, try_call/try_user and the unwinding
 * used by the trap handler. See harness.h.
 */
  .text

/* Stubs: push a zero error code where the processor pushes none, then the vector. */
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
  pusha
  /* Leaving virtual-8086 mode nulls DS/ES/FS/GS: give the C handler usable ones. */
  mov $0x23, %eax
  mov %eax, %ds
  mov %eax, %es
  push %esp
  call trap_handler /* returns only for traps that resume (none use it today) */
  add $4, %esp
  popa
  add $8, %esp
  iret

  .macro STUB_ADDR vec
  .long trap_stub_\vec
  .endm
  .section .rodata
  .balign 4
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
  push %ebp
  push %ebx
  push %esi
  push %edi
  mov %esp, try_saved_sp
  mov 20(%esp), %eax /* fn */
  mov 24(%esp), %ecx /* arg */
  push %ecx
  call *%eax
  add $4, %esp
  mov $0xffffffff, %eax
try_return: /* eax = result; esp = the saved stack */
  movl $0, try_saved_sp
  pop %edi
  pop %esi
  pop %ebx
  pop %ebp
  ret

/* void try_unwind(u32 vector): called by the trap handler; never returns. */
  .globl try_unwind
try_unwind:
  mov 4(%esp), %eax
  mov try_saved_sp, %esp
  mov $KDATA_SEL, %ecx
  mov %cx, %ss
  jmp try_return

/* u32 try_user_raw(void (*fn)(uptr), uptr arg): try_call of user_enter (0x81 = fn returned). */
  .globl try_user_raw
try_user_raw:
  mov 4(%esp), %eax
  mov 8(%esp), %ecx
  mov %eax, user_fn
  mov %ecx, user_arg
  push $0
  push $user_enter
  call try_call
  add $8, %esp
  ret

user_enter: /* (ring 0) iret to user_start at CPL 3 on the user stack */
  mov $user_stack_top, %edx
  sub $8, %edx
  mov user_arg, %ecx
  mov %ecx, 4(%edx)
  mov user_fn, %ecx
  mov %ecx, (%edx)
  push $UDATA_SEL
  push %edx
  pushf
  andl $~0x4000, (%esp) /* NT clear */
  push $UCODE_SEL
  push $user_start
  iret

user_start: /* CPL 3: fn(arg), then back to ring 0 through int USER_DONE */
  pop %eax
  call *%eax
  int $0x81
  ud2

  .set KDATA_SEL, 0x10
  .set UDATA_SEL, 0x23
  .set UCODE_SEL, 0x1b

  .data
  .globl try_saved_sp
try_saved_sp: .long 0
user_fn: .long 0
user_arg: .long 0

  .bss
  .balign 16
  .skip 16384
  .globl user_stack_top
user_stack_top:
  .skip 16384
  .globl kernel_trap_stack_top
kernel_trap_stack_top:
