// Event channels, 2-level ABI (xen-pv-abi.md §7.1), in the layout of the guest's width:
// shared_info.evtchn_pending / evtchn_mask bitmaps (bit p of the bitmap = port p, the same
// bytes for 32- and 64-bit words), vcpu_info.evtchn_pending_sel (one bit per bitmap word: 32
// ports per bit for 32-bit guests, 64 for 64-bit ones) and vcpu_info.evtchn_upcall_pending.
//
// Invariants:
// - E1. Raising port p: set pending[p]; only if it was clear and mask[p] is clear, set the
//   selector bit and upcall_pending of the port's vCPU and wake it. A masked event stays
//   pending in the bitmap (never lost); unmasking re-raises it through the selector (E3).
// - E2. Delivery (entry.ts) happens only when upcall_pending is set and upcall_mask is clear,
//   and sets upcall_mask as it bounces to the event callback: never delivered while masked.
// - E3. EVTCHNOP_unmask of a pending port sets the selector bit and upcall_pending.
// - E4. SCHEDOP_poll wakes on a listed port becoming pending whatever the masks say.
// - E5. Port 0 is never valid; ports are < max (1024 for 32-bit, 4096 for 64-bit guests).

import type { Domain } from "./domain.ts";
import {
  DOMID_SELF,
  EEXIST,
  EINVAL,
  ENOENT,
  ENOSPC,
  EPERM,
  ESRCH,
  NR_VIRQS,
  VIRQ_DEBUG,
  VIRQ_TIMER,
} from "./public.ts";

export const ECS_FREE = 0;
export const ECS_RESERVED = 1;
export const ECS_UNBOUND = 2;
export const ECS_INTERDOMAIN = 3;
export const ECS_PIRQ = 4;
export const ECS_VIRQ = 5;
export const ECS_IPI = 6;

/** VIRQs bound per vCPU; every other VIRQ is global (bound on vCPU 0). */
const PER_VCPU_VIRQ = (1 << VIRQ_TIMER) | (1 << VIRQ_DEBUG) | (1 << 7) | (1 << 13);

export class EventChannels {
  readonly domain: Domain;
  readonly max: number;
  readonly state: Uint8Array;
  readonly notifyVcpu: Uint8Array;
  readonly remoteDom: Uint16Array;
  readonly remotePort: Int32Array;
  readonly virq: Uint8Array;
  /** Ports whose other end is a backend inside this process (console, xenstore). */
  readonly backends = new Map<number, () => void>();
  private readonly pendingOff: number;
  private readonly maskOff: number;
  private readonly selShift: number;
  private readonly selOff: number;

  constructor(domain: Domain) {
    this.domain = domain;
    this.max = domain.is64 ? 4096 : 1024;
    this.state = new Uint8Array(this.max);
    this.notifyVcpu = new Uint8Array(this.max);
    this.remoteDom = new Uint16Array(this.max);
    this.remotePort = new Int32Array(this.max);
    this.virq = new Uint8Array(this.max);
    this.pendingOff = 2048;
    this.maskOff = domain.is64 ? 2560 : 2176;
    this.selShift = domain.is64 ? 6 : 5;
    this.selOff = domain.is64 ? 8 : 4;
  }

  private get u8(): Uint8Array {
    return this.domain.xen.memory.u8;
  }

  valid(port: number): boolean {
    return Number.isInteger(port) && port > 0 && port < this.max;
  }

  isPending(port: number): boolean {
    return (this.u8[this.domain.sharedInfo + this.pendingOff + (port >>> 3)] & (1 << (port & 7))) !== 0;
  }
  isMasked(port: number): boolean {
    return (this.u8[this.domain.sharedInfo + this.maskOff + (port >>> 3)] & (1 << (port & 7))) !== 0;
  }
  private clearPending(port: number): void {
    this.u8[this.domain.sharedInfo + this.pendingOff + (port >>> 3)] &= ~(1 << (port & 7));
  }

  /** Sets the selector bit and upcall_pending of the port's vCPU and wakes it (E1, E3). */
  private markVcpu(port: number): void {
    const v = this.domain.vcpus[this.notifyVcpu[port]] ?? this.domain.vcpus[0];
    const sel = port >>> this.selShift;
    const at = v.vcpuInfo + this.selOff + (sel >>> 3);
    const bit = 1 << (sel & 7);
    const u8 = this.u8;
    const had = (u8[at] & bit) !== 0;
    u8[at] |= bit;
    if (!had) {
      u8[v.vcpuInfo] = 1; // upcall_pending
    } else if (u8[v.vcpuInfo] === 0) {
      u8[v.vcpuInfo] = 1;
    }
    this.domain.xen.scheduler.kick(v);
  }

  /** Raises an event on a port of this domain (E1). */
  raise(port: number): void {
    if (!this.valid(port)) return;
    const u8 = this.u8;
    const at = this.domain.sharedInfo + this.pendingOff + (port >>> 3);
    const bit = 1 << (port & 7);
    if ((u8[at] & bit) !== 0) return;
    u8[at] |= bit;
    const v = this.domain.vcpus[this.notifyVcpu[port]] ?? this.domain.vcpus[0];
    if (!this.isMasked(port)) this.markVcpu(port);
    else if (v.pollPorts !== null) this.domain.xen.scheduler.kick(v); // E4
  }

  /** Raises a VIRQ on a vCPU, if the guest bound it. */
  sendVirq(vcpu: number, virq: number): void {
    const v = this.domain.vcpus[vcpu];
    if (!v) return;
    const port = v.virqPort[virq];
    if (port > 0) this.raise(port);
  }

  private allocPort(): number {
    for (let p = 1; p < this.max; p++) if (this.state[p] === ECS_FREE) return p;
    return -ENOSPC;
  }

  /** A port whose remote end is an in-process backend (console, xenstore); notify via raise(). */
  bindBackend(onSend: () => void): number {
    const p = this.allocPort();
    if (p < 0) throw new Error(`domain ${this.domain.id}: no free event channel for a backend`);
    this.state[p] = ECS_INTERDOMAIN;
    this.remoteDom[p] = 0;
    this.remotePort[p] = -1;
    this.backends.set(p, onSend);
    return p;
  }

  private resolveDom(dom: number): number {
    return dom === DOMID_SELF ? this.domain.id : dom;
  }

  allocUnbound(dom: number, remote: number): number {
    if (this.resolveDom(dom) !== this.domain.id) return -EPERM;
    const p = this.allocPort();
    if (p < 0) return p;
    this.state[p] = ECS_UNBOUND;
    this.notifyVcpu[p] = 0;
    this.remoteDom[p] = this.resolveDom(remote);
    return p;
  }

  bindInterdomain(remoteDomId: number, remotePort: number): number {
    const rd = this.domain.xen.domains.get(this.resolveDom(remoteDomId));
    if (!rd) return -ESRCH;
    const re = rd.evtchn;
    if (!re.valid(remotePort)) return -EINVAL;
    if (re.state[remotePort] !== ECS_UNBOUND || re.remoteDom[remotePort] !== this.domain.id) return -EINVAL;
    const p = this.allocPort();
    if (p < 0) return p;
    this.state[p] = ECS_INTERDOMAIN;
    this.notifyVcpu[p] = 0;
    this.remoteDom[p] = rd.id;
    this.remotePort[p] = remotePort;
    re.state[remotePort] = ECS_INTERDOMAIN;
    re.remotePort[remotePort] = p;
    this.raise(p); // as Xen: the new local port starts pending
    return p;
  }

  bindVirq(virq: number, vcpu: number): number {
    if (!Number.isInteger(virq) || virq < 0 || virq >= NR_VIRQS) return -EINVAL;
    const global = ((PER_VCPU_VIRQ >>> virq) & 1) === 0;
    if (global && vcpu !== 0) return -EINVAL;
    const v = this.domain.vcpus[vcpu];
    if (!v) return -ENOENT;
    if (v.virqPort[virq] !== 0) return -EEXIST;
    const p = this.allocPort();
    if (p < 0) return p;
    this.state[p] = ECS_VIRQ;
    this.virq[p] = virq;
    this.notifyVcpu[p] = vcpu;
    v.virqPort[virq] = p;
    return p;
  }

  bindIpi(vcpu: number): number {
    if (!this.domain.vcpus[vcpu]) return -ENOENT;
    const p = this.allocPort();
    if (p < 0) return p;
    this.state[p] = ECS_IPI;
    this.notifyVcpu[p] = vcpu;
    return p;
  }

  bindVcpu(port: number, vcpu: number): number {
    if (!this.valid(port)) return -EINVAL;
    if (!this.domain.vcpus[vcpu]) return -ENOENT;
    const st = this.state[port];
    if (st === ECS_VIRQ && ((PER_VCPU_VIRQ >>> this.virq[port]) & 1) === 0) {
      // a global VIRQ may move
    } else if (st !== ECS_UNBOUND && st !== ECS_INTERDOMAIN && st !== ECS_PIRQ) return -EINVAL;
    this.notifyVcpu[port] = vcpu;
    if (this.isPending(port) && !this.isMasked(port)) this.markVcpu(port);
    return 0;
  }

  close(port: number): number {
    if (!this.valid(port)) return -EINVAL;
    const st = this.state[port];
    if (st === ECS_FREE) return -EINVAL;
    if (st === ECS_RESERVED) return -EINVAL;
    if (st === ECS_VIRQ) {
      const v = this.domain.vcpus[this.notifyVcpu[port]];
      if (v && v.virqPort[this.virq[port]] === port) v.virqPort[this.virq[port]] = 0;
    } else if (st === ECS_INTERDOMAIN) {
      if (this.backends.has(port)) this.backends.delete(port);
      else {
        const rd = this.domain.xen.domains.get(this.remoteDom[port]);
        const rp = this.remotePort[port];
        if (rd && rd.evtchn.valid(rp) && rd.evtchn.state[rp] === ECS_INTERDOMAIN && rd.evtchn.remotePort[rp] === port) {
          rd.evtchn.state[rp] = ECS_UNBOUND;
          rd.evtchn.remoteDom[rp] = this.domain.id;
        }
      }
    }
    this.state[port] = ECS_FREE;
    this.notifyVcpu[port] = 0;
    this.remoteDom[port] = 0;
    this.remotePort[port] = 0;
    this.virq[port] = 0;
    this.clearPending(port);
    return 0;
  }

  send(port: number): number {
    if (!this.valid(port)) return -EINVAL;
    switch (this.state[port]) {
      case ECS_INTERDOMAIN: {
        const backend = this.backends.get(port);
        if (backend) {
          backend();
          return 0;
        }
        const rd = this.domain.xen.domains.get(this.remoteDom[port]);
        if (rd && rd.state !== "dead") rd.evtchn.raise(this.remotePort[port]);
        return 0;
      }
      case ECS_IPI:
        this.raise(port);
        return 0;
      case ECS_UNBOUND:
        return 0;
      default:
        return -EINVAL;
    }
  }

  unmask(port: number): number {
    if (!this.valid(port)) return -EINVAL;
    this.u8[this.domain.sharedInfo + this.maskOff + (port >>> 3)] &= ~(1 << (port & 7));
    if (this.isPending(port)) this.markVcpu(port); // E3
    return 0;
  }

  /** EVTCHNOP_status fields: [status, vcpu, a, b]. */
  status(port: number): [number, number, number, number] | number {
    if (!this.valid(port)) return -EINVAL;
    const st = this.state[port];
    const vcpu = this.notifyVcpu[port];
    switch (st) {
      case ECS_FREE:
        return [0, vcpu, 0, 0];
      case ECS_UNBOUND:
        return [1, vcpu, this.remoteDom[port], 0];
      case ECS_INTERDOMAIN:
        return [2, vcpu, this.remoteDom[port], Math.max(0, this.remotePort[port])];
      case ECS_PIRQ:
        return [3, vcpu, 0, 0];
      case ECS_VIRQ:
        return [4, vcpu, this.virq[port], 0];
      case ECS_IPI:
        return [5, vcpu, 0, 0];
      default:
        return [0, vcpu, 0, 0];
    }
  }

  /** Closes every port except backends (EVTCHNOP_reset). */
  reset(): number {
    for (let p = 1; p < this.max; p++) {
      if (this.state[p] !== ECS_FREE && this.state[p] !== ECS_RESERVED && !this.backends.has(p)) this.close(p);
    }
    return 0;
  }

  /** Any of these ports pending (poll)? */
  anyPending(ports: readonly number[]): boolean {
    for (const p of ports) if (this.valid(p) && this.isPending(p)) return true;
    return false;
  }
}
