/* physdev_op (set_iopl, set_iobitmap, irq_status_query, eoi) and port I/O emulation: IN/OUT
 * and INS/OUTS under the virtual IOPL and the I/O bitmap. */
#include "runtime/pv.h"

#define EINVAL 22
#define EFAULT 14

volatile unsigned long seen_vec, seen_err, seen_cr2, resume_at;
static unsigned char bitmap[8192];
static unsigned char buf[64];

static void record(struct regs *r) {
  seen_vec = r->vector;
  seen_err = r->error;
  seen_cr2 = shared->vcpu_info[0].arch.cr2;
  REG_IP(r) = resume_at;
}

#ifdef __x86_64__
#define SETRESUME "leaq 9f(%%rip), %%r11; movq %%r11, resume_at(%%rip);"
#define XCLOB "r11", "memory"
#define DI "rdi"
#define SI "rsi"
#define CX "rcx"
#else
#define SETRESUME "movl $9f, resume_at;"
#define XCLOB "memory"
#define DI "edi"
#define SI "esi"
#define CX "ecx"
#endif
#define EXPECT(insn, ...)                                   \
  do {                                                      \
    seen_vec = 999;                                         \
    asm volatile(SETRESUME insn "\n9:" ::: __VA_ARGS__);    \
  } while (0)

static long physdev(int cmd, void *arg) { return HC(__HYPERVISOR_physdev_op, cmd, arg, 0, 0, 0); }
static long set_bitmap(void *bmp, unsigned nr) {
  struct physdev_set_iobitmap b;
  memset(&b, 0, sizeof b);
  set_xen_guest_handle(b.bitmap, (uint8_t *)bmp);
  b.nr_ports = nr;
  return physdev(PHYSDEVOP_set_iobitmap, &b);
}

void test_main(void) {
  install_traps();
  for (int v = 0; v < 20; v++) on_trap(v, record);

  struct physdev_irq_status_query q = {.irq = 0, .flags = 0};
  check(physdev(PHYSDEVOP_irq_status_query, &q) == 0 && q.flags == XENIRQSTAT_needs_eoi, "irq_status_query: needs_eoi");
  q.irq = 1000;
  check(physdev(PHYSDEVOP_irq_status_query, &q) == -EINVAL, "irq_status_query beyond the domain's PIRQs: -EINVAL");
  check(physdev(PHYSDEVOP_irq_status_query, (void *)8) == -EFAULT, "irq_status_query from a bad pointer: -EFAULT");
  struct physdev_eoi eoi = {.irq = 3};
  check(physdev(PHYSDEVOP_eoi, &eoi) == -EINVAL, "eoi of a PIRQ that is not bound: -EINVAL");
  check(physdev(99, &eoi) == -38, "unknown physdev_op: -ENOSYS");
  struct physdev_op pop;
  memset(&pop, 0, sizeof pop);
  pop.cmd = PHYSDEVOP_irq_status_query;
  pop.u.irq_status_query.irq = 1;
  check(HC(__HYPERVISOR_physdev_op_compat, &pop, 0, 0, 0, 0) == 0 && pop.u.irq_status_query.flags == XENIRQSTAT_needs_eoi,
        "physdev_op_compat irq_status_query (the union after cmd, aligned)");
  pop.cmd = PHYSDEVOP_eoi;
  check(HC(__HYPERVISOR_physdev_op_compat, &pop, 0, 0, 0, 0) == -38, "physdev_op_compat eoi: -ENOSYS (not forwarded)");
  check(set_bitmap(bitmap, 65537) == -EINVAL, "set_iobitmap over 65536 ports: -EINVAL");
#ifdef __x86_64__
  check(set_bitmap((void *)0xffff800000000000UL, 16) == -EINVAL, "set_iobitmap in Xen's range: -EINVAL");
#else
  check(set_bitmap((void *)0xfffff000UL, 16) == -EINVAL, "set_iobitmap in the hypervisor hole: -EINVAL");
#endif
  check(physdev(PHYSDEVOP_set_iobitmap, (void *)8) == -EFAULT, "set_iobitmap from a bad pointer: -EFAULT");

  EXPECT("inb $0x80, %%al", "eax", XCLOB);
  check(seen_vec == 13, "in at IOPL 0 with no bitmap: #GP");
  EXPECT("movw $0x80, %%dx; insb", "edx", DI, XCLOB);
  check(seen_vec == 13, "insb at IOPL 0 with no bitmap: #GP");

  memset(bitmap, 0xff, sizeof bitmap);
  bitmap[0x80 / 8] &= (unsigned char)~1; /* port 0x80 allowed */
  check(set_bitmap(bitmap, 65536) == 0, "set_iobitmap");
  unsigned char in = 0;
  seen_vec = 999;
  asm volatile("inb $0x80, %0" : "=a"(in));
  check(seen_vec == 999 && in == 0xff, "in from a port the bitmap allows: emulated, reads all ones");
  asm volatile("movw $0x80, %%dx; outb %%al, %%dx" ::: "edx");
  check(seen_vec == 999, "out to it (port in DX): dropped");
  EXPECT("inb $0x81, %%al", "eax", XCLOB);
  check(seen_vec == 13 && seen_err == 0, "in from a port the bitmap forbids: #GP(0)");
  EXPECT("inw $0x80, %%ax", "eax", XCLOB);
  check(seen_vec == 13, "a 2-byte in covering a forbidden port: #GP");
  check(set_bitmap(bitmap, 0x80) == 0, "set_iobitmap covering ports below 0x80 only");
  EXPECT("inb $0x80, %%al", "eax", XCLOB);
  check(seen_vec == 13, "a port past nr_ports: #GP");
  check(set_bitmap(bitmap, 65536) == 0, "the whole bitmap again");

  /* INS / OUTS. */
  memset(buf, 0, sizeof buf);
  unsigned long di = (unsigned long)buf + 8, cx = 5;
  seen_vec = 999;
  asm volatile("movw $0x80, %%dx; rep insb" : "+D"(di), "+c"(cx)::"edx", "memory");
  check(seen_vec == 999 && buf[8] == 0xff && buf[12] == 0xff && buf[13] == 0 && buf[7] == 0 &&
            di == (unsigned long)buf + 13 && cx == 0,
        "rep insb: five bytes of all ones, rDI advanced, rCX zero");
  di = (unsigned long)buf + 32;
  asm volatile("std; movw $0x80, %%dx; insb; insb; cld" : "+D"(di)::"edx", "memory");
  check(di == (unsigned long)buf + 30 && buf[32] == 0xff && buf[31] == 0xff && buf[30] == 0, "insb with DF set: rDI goes down");
  EXPECT("movw $0x80, %%dx; insw", "edx", DI, XCLOB);
  check(seen_vec == 13, "insw covering a forbidden port: #GP");
  di = (unsigned long)buf + 40;
  cx = 0;
  asm volatile("movw $0x80, %%dx; rep insb" : "+D"(di), "+c"(cx)::"edx", "memory");
  check(di == (unsigned long)buf + 40 && buf[40] == 0, "rep insb with rCX 0: nothing");
  unsigned long si = (unsigned long)buf;
  cx = 7;
  asm volatile("movw $0x80, %%dx; rep outsb" : "+S"(si), "+c"(cx)::"edx", "memory");
  check(si == (unsigned long)buf + 7 && cx == 0, "rep outsb: rSI advanced, rCX zero");
  EXPECT("xor %%" SI ", %%" SI "; movw $0x80, %%dx; outsb", "edx", SI, XCLOB);
  check(seen_vec == 14 && seen_cr2 == 0 && (seen_err & 2) == 0, "outsb from address 0: #PF (read), CR2 0");
  EXPECT("xor %%" DI ", %%" DI "; movw $0x80, %%dx; insb", "edx", DI, XCLOB);
  check(seen_vec == 14 && seen_cr2 == 0 && (seen_err & 2) == 2, "insb to address 0: #PF (write)");

  struct physdev_set_iopl io = {.iopl = 1};
  check(physdev(PHYSDEVOP_set_iopl, &io) == 0, "set_iopl 1");
  seen_vec = 999;
  asm volatile("inb $0x81, %0" : "=a"(in));
  di = (unsigned long)buf + 48;
  asm volatile("movw $0x81, %%dx; insb" : "+D"(di)::"edx", "memory");
  check(seen_vec == 999 && in == 0xff && buf[48] == 0xff, "under IOPL 1 every port: in and insb emulated");
}
