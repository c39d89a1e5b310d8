// THE hypercall table: one declarative line per hypercall (number, name, argument count,
// which guest types may call it, handler). Dispatch, -ENOSYS for what is unknown or not
// implemented, the multicall path and the fuzz test are all derived from it.
//
// Invariants:
// - K1. A number with no line, a line with no handler, or a guest type the line does not list
//   gives -ENOSYS; nothing else about the call is looked at.
// - K2. A handler never sees a fault as an exception: a guest-memory fault (GUEST_MEM_FAULT)
//   becomes -EFAULT; any other exception crashes the calling domain (a hypervisor bug must not
//   take the host down) and is logged.
// - K3. After every hypercall, if a writable reference was dropped, every TLB of the domain is
//   flushed before the guest runs again (mm.ts M5).

import * as S from "../../x86/state.ts";
import { GUEST_MEM_FAULT } from "../guestmem.ts";
import { flushDomainTlbs } from "../mm.ts";
import { EFAULT, EINVAL, ENOSYS } from "../public.ts";
import type { Vcpu } from "../vcpu.ts";
import * as basic from "./basic.ts";
import { Call, NO_RESULT } from "./call.ts";
import * as ev from "./evtchn.ts";
import * as memory from "./memory.ts";

export type GuestKind = "pv32" | "pv64";
export type Handler = (c: Call) => number;

export interface HypercallEntry {
  nr: number;
  name: string;
  /** Arguments the hypercall takes (for each guest type: [pv32, pv64]). */
  args: [number, number];
  /** Guest types allowed to call it. */
  who: readonly GuestKind[];
  /** Undefined: known but not implemented (-ENOSYS). */
  handler?: Handler;
  /** May appear inside a multicall. */
  multicall?: boolean;
}

const BOTH: readonly GuestKind[] = ["pv32", "pv64"];
const PV64: readonly GuestKind[] = ["pv64"];

export const HYPERCALLS: readonly HypercallEntry[] = [
  { nr: 0, name: "set_trap_table", args: [1, 1], who: BOTH, handler: basic.setTrapTable, multicall: true },
  { nr: 1, name: "mmu_update", args: [4, 4], who: BOTH, handler: memory.mmuUpdate, multicall: true },
  { nr: 2, name: "set_gdt", args: [2, 2], who: BOTH, handler: memory.setGdt, multicall: true },
  { nr: 3, name: "stack_switch", args: [2, 2], who: BOTH, handler: basic.stackSwitch, multicall: true },
  { nr: 4, name: "set_callbacks", args: [4, 3], who: BOTH, handler: basic.setCallbacks, multicall: true },
  { nr: 5, name: "fpu_taskswitch", args: [1, 1], who: BOTH, handler: basic.fpuTaskswitch, multicall: true },
  { nr: 6, name: "sched_op_compat", args: [2, 2], who: BOTH, handler: basic.schedOpCompat },
  { nr: 7, name: "platform_op", args: [1, 1], who: BOTH },
  { nr: 8, name: "set_debugreg", args: [3, 2], who: BOTH, handler: basic.setDebugreg, multicall: true },
  { nr: 9, name: "get_debugreg", args: [1, 1], who: BOTH, handler: basic.getDebugreg, multicall: true },
  {
    nr: 10,
    name: "update_descriptor",
    args: [4, 2],
    who: BOTH,
    handler: memory.updateDescriptor,
    multicall: true,
  },
  { nr: 12, name: "memory_op", args: [2, 2], who: BOTH, handler: memory.memoryOp, multicall: true },
  { nr: 13, name: "multicall", args: [2, 2], who: BOTH, handler: multicall },
  {
    nr: 14,
    name: "update_va_mapping",
    args: [4, 3],
    who: BOTH,
    handler: memory.updateVaMapping,
    multicall: true,
  },
  { nr: 15, name: "set_timer_op", args: [2, 1], who: BOTH, handler: basic.setTimerOp, multicall: true },
  {
    nr: 16,
    name: "event_channel_op_compat",
    args: [1, 1],
    who: BOTH,
    handler: ev.eventChannelOpCompat,
    multicall: true,
  },
  { nr: 17, name: "xen_version", args: [2, 2], who: BOTH, handler: basic.xenVersion, multicall: true },
  { nr: 18, name: "console_io", args: [3, 3], who: BOTH, handler: basic.consoleIo, multicall: true },
  {
    nr: 19,
    name: "physdev_op_compat",
    args: [1, 1],
    who: BOTH,
    handler: ev.physdevOpCompat,
    multicall: true,
  },
  { nr: 20, name: "grant_table_op", args: [3, 3], who: BOTH, handler: ev.grantTableOp, multicall: true },
  { nr: 21, name: "vm_assist", args: [2, 2], who: BOTH, handler: basic.vmAssist, multicall: true },
  { nr: 22, name: "update_va_mapping_otherdomain", args: [5, 4], who: BOTH },
  { nr: 23, name: "iret", args: [0, 0], who: BOTH, handler: basic.iret },
  { nr: 24, name: "vcpu_op", args: [3, 3], who: BOTH, handler: basic.vcpuOp, multicall: true },
  {
    nr: 25,
    name: "set_segment_base",
    args: [2, 2],
    who: PV64,
    handler: basic.setSegmentBase,
    multicall: true,
  },
  { nr: 26, name: "mmuext_op", args: [4, 4], who: BOTH, handler: memory.mmuextOp, multicall: true },
  { nr: 27, name: "xsm_op", args: [1, 1], who: BOTH },
  { nr: 28, name: "nmi_op", args: [2, 2], who: BOTH, handler: basic.nmiOp, multicall: true },
  { nr: 29, name: "sched_op", args: [2, 2], who: BOTH, handler: basic.schedOp },
  { nr: 30, name: "callback_op", args: [2, 2], who: BOTH, handler: basic.callbackOp, multicall: true },
  { nr: 31, name: "xenoprof_op", args: [2, 2], who: BOTH },
  { nr: 32, name: "event_channel_op", args: [2, 2], who: BOTH, handler: ev.eventChannelOp, multicall: true },
  { nr: 33, name: "physdev_op", args: [2, 2], who: BOTH, handler: ev.physdevOp, multicall: true },
  { nr: 34, name: "hvm_op", args: [2, 2], who: BOTH },
  { nr: 35, name: "sysctl", args: [1, 1], who: BOTH },
  { nr: 36, name: "domctl", args: [1, 1], who: BOTH },
  { nr: 37, name: "kexec_op", args: [2, 2], who: BOTH },
  { nr: 38, name: "tmem_op", args: [1, 1], who: BOTH },
  { nr: 39, name: "argo_op", args: [5, 5], who: BOTH },
  { nr: 40, name: "xenpmu_op", args: [2, 2], who: BOTH },
  { nr: 41, name: "dm_op", args: [3, 3], who: BOTH },
  { nr: 42, name: "hypfs_op", args: [5, 5], who: BOTH },
  { nr: 48, name: "mca", args: [1, 1], who: BOTH },
];

/** The table indexed by number (derived). */
const BY_NUMBER: (HypercallEntry | undefined)[] = [];
for (const e of HYPERCALLS) {
  if (BY_NUMBER[e.nr]) throw new Error(`hypercall table: number ${e.nr} twice`);
  BY_NUMBER[e.nr] = e;
}

export function hypercallEntry(nr: number): HypercallEntry | undefined {
  return nr >= 0 && nr < BY_NUMBER.length ? BY_NUMBER[nr] : undefined;
}

const calls = new WeakMap<Vcpu, Call>();
function callFor(v: Vcpu): Call {
  let c = calls.get(v);
  if (!c) {
    c = new Call(v);
    calls.set(v, c);
  }
  return c;
}

/** Runs hypercall `nr` with arguments `args`; returns the result (K1, K2). */
export function invoke(v: Vcpu, nr: number, args: [number, number][], inMulticall: boolean): number {
  const e = hypercallEntry(nr);
  const kind: GuestKind = v.domain.is64 ? "pv64" : "pv32";
  if (!e?.handler || !e.who.includes(kind)) return -ENOSYS;
  if (inMulticall && !e.multicall) return -EINVAL;
  const c = callFor(v);
  const savedArgs = c.args;
  const savedIn = c.inMulticall;
  c.args = args;
  c.inMulticall = inMulticall;
  try {
    return e.handler(c);
  } catch (err) {
    if (err === GUEST_MEM_FAULT) return -EFAULT;
    const msg = err instanceof Error ? `${err.message}\n${err.stack}` : String(err);
    v.domain.xen.log(`hypercall ${e.name}: ${msg}`);
    v.domain.crash(`hypervisor error in hypercall ${e.name}: ${msg.split("\n")[0]}`);
    return -EINVAL;
  } finally {
    c.args = savedArgs;
    c.inMulticall = savedIn;
  }
}

/** Entry from entry.ts: dispatch and write the result to EAX/RAX (K3). */
export function dispatchHypercall(v: Vcpu, nr: number, nrHi: number, args: [number, number][]): void {
  const r = nrHi !== 0 ? -ENOSYS : invoke(v, nr, args, false);
  v.domain.xen.traceHypercall?.(v, nr, args, r);
  if (r !== NO_RESULT) {
    if (v.domain.is64) {
      v.s[S.REG_EAX * 2] = r | 0;
      v.s[S.REG_EAX * 2 + 1] = r < 0 ? -1 : Math.floor(r / 4294967296) | 0;
    } else {
      v.s[S.REG_EAX * 2] = r | 0;
      v.s[S.REG_EAX * 2 + 1] = 0;
    }
  }
  if (v.domain.needTlbFlush) flushDomainTlbs(v.domain);
}

/** multicall(entries, nr): {op, result, args[6]} of xen_ulong each (xen-pv-abi.md §4.2). */
function multicall(c: Call): number {
  if (c.inMulticall) return -EINVAL;
  const w = c.ulongBytes;
  const entrySize = 8 * w;
  const n = c.u(1);
  let [lo, hi] = [c.lo(0), c.hi(0)];
  for (let k = 0; k < n; k++) {
    if (c.d.state !== "running") break;
    const bytes = c.mem.bytes(lo, hi, entrySize);
    const dvw = new DataView(bytes.buffer);
    const word = (i: number): [number, number] =>
      w === 8
        ? [dvw.getUint32(i * 8, true), dvw.getUint32(i * 8 + 4, true)]
        : [dvw.getUint32(i * 4, true), 0];
    const [op, opHi] = word(0);
    const args: [number, number][] = [word(2), word(3), word(4), word(5), word(6)];
    const r = opHi !== 0 ? -ENOSYS : invoke(c.v, op, args, true);
    const resAt = lo + w;
    const [rlo, rhi] = resAt > 0xffffffff ? [resAt - 4294967296, hi + 1] : [resAt, hi];
    c.mem.setUlong(rlo, rhi, r);
    const next = lo + entrySize;
    if (next > 0xffffffff) {
      lo = next - 4294967296;
      hi = (hi + 1) >>> 0;
    } else lo = next;
  }
  return 0;
}
