/*
 * The "hello" test kernel: proves the boot contract of the bare machine. It prints what the
 * Multiboot loader handed over (magic, command line, modules, memory map) on the UART, one line
 * on the debug console, and exits with code 0 (host status 1).
 * tests/machine.test.ts checks this transcript, so keep the line formats stable.
 */
#include "runtime/machine.h"

static const char *memory_type(u32 type) {
  return type == 1 ? "available" : type == 2 ? "reserved" : "other";
}

/* A short module that is one line of text is shown, so a newcomer sees the module arrive. */
static void print_if_text(u32 index, const u8 *data, u32 size) {
  if (size > 0 && data[size - 1] == '\n') size--;
  if (size == 0 || size > 72) return;
  for (u32 k = 0; k < size; k++) {
    if (data[k] < 0x20 || data[k] > 0x7e) return;
  }
  printf("hello: module %u text: \"", index);
  for (u32 k = 0; k < size; k++) serial_putc((char)data[k]);
  print("\"\n");
}

u32 kmain(u32 magic, struct multiboot_info *info) {
  serial_init();
  debugcon_puts("hello: debug console on port 0xe9\n");
  printf("hello: %s kernel booted by a Multiboot loader\n", sizeof(uptr) == 8 ? "64-bit" : "32-bit");
  if (magic != MULTIBOOT_BOOTLOADER_MAGIC) {
    printf("hello: bad magic 0x%x\n", magic);
    return 3;
  }
  if (info->flags & (1u << 9)) printf("hello: boot loader: %s\n", (const char *)(uptr)info->boot_loader_name);
  if (info->flags & (1u << 2)) printf("hello: cmdline: \"%s\"\n", (const char *)(uptr)info->cmdline);
  else print("hello: no cmdline\n");
  if (info->flags & 1u) printf("hello: memory: lower %u KiB, upper %u KiB\n", info->mem_lower, info->mem_upper);
  if (info->flags & (1u << 3)) {
    const struct multiboot_module *mods = (const struct multiboot_module *)(uptr)info->mods_addr;
    printf("hello: %u module(s)\n", info->mods_count);
    for (u32 i = 0; i < info->mods_count; i++) {
      const u8 *data = (const u8 *)(uptr)mods[i].mod_start;
      u32 size = mods[i].mod_end - mods[i].mod_start;
      u32 sum = 0;
      for (u32 k = 0; k < size; k++) sum = sum * 31 + data[k];
      printf("hello: module %u: 0x%08x-0x%08x %u bytes sum 0x%08x \"%s\"\n", i, mods[i].mod_start, mods[i].mod_end,
             size, sum, (const char *)(uptr)mods[i].string);
      print_if_text(i, data, size);
    }
  }
  if (info->flags & (1u << 6)) {
    print("hello: memory map:\n");
    uptr p = info->mmap_addr;
    uptr end = p + info->mmap_length;
    while (p < end) {
      const struct multiboot_mmap_entry *e = (const struct multiboot_mmap_entry *)p;
      printf("hello:   0x%llx-0x%llx %s\n", e->addr, e->addr + e->len, memory_type(e->type));
      p += e->size + 4;
    }
  }
  print("hello: exiting with code 0\n");
  return 0;
}
