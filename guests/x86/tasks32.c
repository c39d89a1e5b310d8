/*
 * tasks32: hardware task switching in 32-bit protected mode, checked against the Intel SDM
 * vol. 3 §7.3 (task switching) and §6.11.1 (task gates in the IDT): CALL to a TSS with the
 * return by IRET through the back link (NT), and a #DF handled in its own task through a task
 * gate, as 32-bit Linux does.
 */
#include "harness.h"

static void do_load_ds(uptr sel) { __asm__ volatile("mov %0, %%ds; mov %1, %%ds" : : "r"((u16)sel), "r"((u16)UDATA)); }

/* ------------------------------------------------------------------ hardware task switches */

#define SEL_TSS_CALL 0x98 /* a task entered by CALL, leaving by IRET (NT) */
#define SEL_TSS_DF 0xa0   /* the #DF task, entered through a task gate */
struct tss32 {
  u32 link, esp0, ss0, esp1, ss1, esp2, ss2, cr3, eip, eflags;
  u32 eax, ecx, edx, ebx, esp, ebp, esi, edi;
  u32 es, cs, ss, ds, fs, gs, ldt;
  u16 trap, iomap;
};
static struct tss32 call_tss, df_tss;
static u8 call_stack[4096] __attribute__((aligned(16)));
static u8 df_stack[4096] __attribute__((aligned(16)));
static volatile u32 call_count, call_tr, call_flags, df_count, df_error, df_tr;

void df_fix(void);
extern char call_task_entry[], df_task_entry[];
__asm__(
    ".text\n"
    "call_task_entry:\n"
    "  incl call_count\n"
    "  str %ax\n  movzwl %ax, %eax\n  mov %eax, call_tr\n"
    "  pushf\n  pop %eax\n  mov %eax, call_flags\n"
    "  iret\n" /* NT is set: back to the caller's task */
    "  jmp call_task_entry\n"
    "df_task_entry:\n"
    "  pop %eax\n  mov %eax, df_error\n"
    "  incl df_count\n"
    "  str %ax\n  movzwl %ax, %eax\n  mov %eax, df_tr\n"
    "  call df_fix\n"
    "  iret\n"
    "  jmp df_task_entry\n");

static void task_init(struct tss32 *t, uptr entry, u8 *stack) {
  memset(t, 0, sizeof *t);
  t->cr3 = (u32)read_cr3();
  t->eip = (u32)entry;
  t->eflags = 2;
  t->esp = (u32)(uptr)(stack + 4096);
  t->cs = KCODE;
  t->ss = KDATA;
  t->ds = t->es = t->fs = t->gs = UDATA;
  t->iomap = sizeof *t;
}

static volatile u32 *idt_gate_hi(u32 vector) {
  struct __attribute__((packed)) { u16 limit; u32 base; } idtr;
  __asm__ volatile("sidt %0" : "=m"(idtr));
  return (volatile u32 *)(uptr)(idtr.base + vector * 8 + 4);
}
void df_fix(void) { *idt_gate_hi(13) |= 0x8000u; }
static void do_call_task(uptr a) {
  (void)a;
  __asm__ volatile("lcall $0x98, $0" : : : "memory");
}

u32 kmain(u32 magic, struct multiboot_info *info) {
  (void)magic;
  (void)info;
  harness_init();
  /* Hardware task switches (SDM 7.3). */
  task_init(&call_tss, (uptr)call_task_entry, call_stack);
  task_init(&df_tss, (uptr)df_task_entry, df_stack);
  gdt_set(SEL_TSS_CALL, seg_desc((u32)(uptr)&call_tss, sizeof call_tss - 1, 0x89, 0));
  gdt_set(SEL_TSS_DF, seg_desc((u32)(uptr)&df_tss, sizeof df_tss - 1, 0x89, 0));
  EQ("CALL to a TSS and IRET back", try_call(do_call_task, 0), NO_TRAP);
  EQ("  the task ran once", call_count, 1);
  EQ("  TR is the new TSS inside it", call_tr, SEL_TSS_CALL);
  EQ("  NT is set inside it", call_flags & 0x4000, 0x4000);
  EQ("  back link", call_tss.link, TSS_SEL);
  EQ("  after IRET the task is available again", (gdt[SEL_TSS_CALL >> 3] >> 40) & 0xf, 0x9);
  {
    u16 tr;
    __asm__ volatile("str %0" : "=r"(tr));
    EQ("  and TR is back", tr, TSS_SEL);
  }
  idt_set(8, 0, SEL_TSS_DF, 0x5, 0, 0); /* task gate */
  *idt_gate_hi(13) &= ~0x8000u;
  EQ("#DF through a task gate; the #DF task repairs the #GP gate and IRETs", try_call(do_load_ds, KDATA + 0x1000), 13);
  EQ("  the #DF task ran once", df_count, 1);
  EQ("  with error code 0 on its stack", df_error, 0);
  EQ("  TR was the #DF TSS", df_tr, SEL_TSS_DF);
  EQ("  the retried instruction then raised #GP(sel)", trap.error, KDATA + 0x1000);
  idt_reset(8);

  return finish();
}
