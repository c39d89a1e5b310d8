// A National Semiconductor 16550A UART, as much as Linux's 8250 driver and our kernels use.
//
// Transmission is instant: a byte written to THR reaches the sink during the OUT instruction,
// so LSR always reports THRE and TEMT (transmitter empty) and nobody ever waits. Received bytes
// come from the host through `receive()` into a ring that stands in for the receive FIFO; it is
// longer than the chip's 16 bytes so that pasted text is not lost while the guest is busy, and
// a host that outruns it sees bytes dropped and the overrun bit set, as on the real part.
//
// Invariants:
// - 0 <= rxCount <= RX_CAPACITY and the queued bytes are rx[(rxHead + i) % RX_CAPACITY].
// - `ier` holds 4 bits, `mcr` 5 bits; every other register holds 8 bits.
// - The interrupt line (`onInterrupt`) is raised exactly while IIR reports a pending source. As
//   in QEMU (and unlike a PC's wiring), MCR.OUT2 does not gate the line.

import type { AccessSize, ByteSink, PortDevice } from "../device.ts";

export const UART_PORT_COUNT = 8;
export const COM1_PORT = 0x3f8;
const RX_CAPACITY = 4096;

// Register offsets (DLAB = LCR bit 7 selects the divisor latch at offsets 0 and 1).
const REG_DATA = 0; // RBR (read) / THR (write) / DLL (DLAB)
const REG_IER = 1; // IER / DLM (DLAB)
const REG_IIR_FCR = 2; // IIR (read) / FCR (write)
const REG_LCR = 3;
const REG_MCR = 4;
const REG_LSR = 5;
const REG_MSR = 6;
const REG_SCR = 7;

const LCR_DLAB = 0x80;
const IER_RDI = 0x01; // received data available
const IER_THRI = 0x02; // transmitter holding register empty
const IER_RLSI = 0x04; // receiver line status
const IER_MSI = 0x08; // modem status
const IIR_NONE = 0x01;
const IIR_MSI = 0x00;
const IIR_THRI = 0x02;
const IIR_RDI = 0x04;
const IIR_RLSI = 0x06;
const IIR_FIFO_ENABLED = 0xc0;
const FCR_ENABLE = 0x01;
const FCR_CLEAR_RX = 0x02;
const LSR_DR = 0x01;
const LSR_OE = 0x02;
const LSR_THRE = 0x20;
const LSR_TEMT = 0x40;
const MCR_DTR = 0x01;
const MCR_RTS = 0x02;
const MCR_OUT1 = 0x04;
const MCR_OUT2 = 0x08;
const MCR_LOOP = 0x10;
const MSR_CTS = 0x10;
const MSR_DSR = 0x20;
const MSR_RI = 0x40;
const MSR_DCD = 0x80;
/** With nothing attached to the modem lines, report a ready terminal (as QEMU does). */
const MSR_LINES_IDLE = MSR_DCD | MSR_DSR | MSR_CTS;

export interface Uart16550State {
  ier: number;
  lcr: number;
  mcr: number;
  fcr: number;
  scr: number;
  dll: number;
  dlm: number;
  msrLines: number;
  msrDeltas: number;
  thrInterrupt: boolean;
  overrun: boolean;
  rx: number[];
}

export interface Uart16550Options {
  /** Receives every byte the guest transmits (not called in loopback mode). */
  output: ByteSink;
  /** Called with the new level whenever the interrupt line changes. */
  onInterrupt?: (raised: boolean) => void;
}

export class Uart16550 implements PortDevice<Uart16550State> {
  readonly name = "uart16550";
  readonly portCount = UART_PORT_COUNT;
  private readonly output: ByteSink;
  private readonly onInterrupt: ((raised: boolean) => void) | undefined;
  private readonly rx = new Uint8Array(RX_CAPACITY);
  private rxHead = 0;
  private rxCount = 0;
  private ier = 0;
  private lcr = 0;
  private mcr = 0;
  private fcr = 0;
  private scr = 0;
  private dll = 0;
  private dlm = 0;
  /** The upper four MSR bits (CTS, DSR, RI, DCD) as last reported. */
  private msrLines = MSR_LINES_IDLE;
  private msrDeltas = 0;
  private thrInterrupt = false;
  private overrun = false;
  private irqRaised = false;

  constructor(options: Uart16550Options) {
    this.output = options.output;
    this.onInterrupt = options.onInterrupt;
    this.reset();
  }

  reset(): void {
    this.rxHead = 0;
    this.rxCount = 0;
    this.ier = 0;
    this.lcr = 0;
    this.mcr = 0;
    this.fcr = 0;
    this.scr = 0;
    this.dll = 12; // 9600 baud from the PC's 1.8432 MHz clock; firmware usually sets it anyway
    this.dlm = 0;
    this.msrLines = MSR_LINES_IDLE;
    this.msrDeltas = 0;
    this.thrInterrupt = false;
    this.overrun = false;
    this.updateInterrupt();
  }

  /** Queues bytes typed on the host; returns how many fitted (the rest are dropped). */
  receive(bytes: Uint8Array): number {
    let accepted = 0;
    for (let i = 0; i < bytes.length; i++) {
      if (this.rxCount === RX_CAPACITY) {
        this.overrun = true;
        break;
      }
      this.rx[(this.rxHead + this.rxCount) % RX_CAPACITY] = bytes[i];
      this.rxCount++;
      accepted++;
    }
    this.updateInterrupt();
    return accepted;
  }

  /** Bytes waiting for the guest to read. */
  get pendingInput(): number {
    return this.rxCount;
  }

  get interruptRaised(): boolean {
    return this.irqRaised;
  }

  portRead(offset: number, _size: AccessSize): number {
    switch (offset) {
      case REG_DATA:
        if (this.lcr & LCR_DLAB) return this.dll;
        return this.popReceived();
      case REG_IER:
        return this.lcr & LCR_DLAB ? this.dlm : this.ier;
      case REG_IIR_FCR: {
        const iir = this.interruptIdentification();
        // Reading IIR while it names the THR-empty source acknowledges that source.
        if ((iir & 0x0f) === IIR_THRI) {
          this.thrInterrupt = false;
          this.updateInterrupt();
        }
        return iir;
      }
      case REG_LCR:
        return this.lcr;
      case REG_MCR:
        return this.mcr;
      case REG_LSR: {
        let lsr = LSR_THRE | LSR_TEMT;
        if (this.rxCount > 0) lsr |= LSR_DR;
        if (this.overrun) lsr |= LSR_OE;
        this.overrun = false; // error bits clear on read
        this.updateInterrupt();
        return lsr;
      }
      case REG_MSR: {
        const msr = this.msrLines | this.msrDeltas;
        this.msrDeltas = 0;
        this.updateInterrupt();
        return msr;
      }
      case REG_SCR:
        return this.scr;
      default:
        return 0xff;
    }
  }

  portWrite(offset: number, _size: AccessSize, value: number): void {
    value &= 0xff;
    switch (offset) {
      case REG_DATA:
        if (this.lcr & LCR_DLAB) {
          this.dll = value;
          return;
        }
        if (this.mcr & MCR_LOOP) this.receive(LOOPBACK_BYTE.fill(value));
        else this.output(value);
        // The byte left at once, so THR is empty again: that is a fresh THRE event.
        this.thrInterrupt = true;
        this.updateInterrupt();
        return;
      case REG_IER:
        if (this.lcr & LCR_DLAB) {
          this.dlm = value;
          return;
        }
        // Enabling the THRE interrupt while THR is already empty raises it at once.
        if (value & IER_THRI && !(this.ier & IER_THRI)) this.thrInterrupt = true;
        this.ier = value & 0x0f;
        this.updateInterrupt();
        return;
      case REG_IIR_FCR:
        if ((value ^ this.fcr) & FCR_ENABLE || value & FCR_CLEAR_RX) {
          this.rxHead = 0;
          this.rxCount = 0;
        }
        this.fcr = value & 0xc9; // enable, DMA mode and trigger level persist; reset bits do not
        this.updateInterrupt();
        return;
      case REG_LCR:
        this.lcr = value;
        return;
      case REG_MCR:
        this.mcr = value & 0x1f;
        this.updateModemLines();
        return;
      case REG_LSR:
        return; // read-only (factory test register on writes)
      case REG_MSR:
        return; // read-only
      case REG_SCR:
        this.scr = value;
        return;
    }
  }

  save(): Uart16550State {
    const rx: number[] = [];
    for (let i = 0; i < this.rxCount; i++) rx.push(this.rx[(this.rxHead + i) % RX_CAPACITY]);
    return {
      ier: this.ier,
      lcr: this.lcr,
      mcr: this.mcr,
      fcr: this.fcr,
      scr: this.scr,
      dll: this.dll,
      dlm: this.dlm,
      msrLines: this.msrLines,
      msrDeltas: this.msrDeltas,
      thrInterrupt: this.thrInterrupt,
      overrun: this.overrun,
      rx,
    };
  }

  restore(s: Uart16550State): void {
    if (s.rx.length > RX_CAPACITY)
      throw new RangeError(`uart16550: saved receive queue holds ${s.rx.length} bytes`);
    this.ier = s.ier & 0x0f;
    this.lcr = s.lcr & 0xff;
    this.mcr = s.mcr & 0x1f;
    this.fcr = s.fcr & 0xc9;
    this.scr = s.scr & 0xff;
    this.dll = s.dll & 0xff;
    this.dlm = s.dlm & 0xff;
    this.msrLines = s.msrLines & 0xf0;
    this.msrDeltas = s.msrDeltas & 0x0f;
    this.thrInterrupt = s.thrInterrupt;
    this.overrun = s.overrun;
    this.rxHead = 0;
    this.rxCount = 0;
    this.receive(Uint8Array.from(s.rx));
  }

  private popReceived(): number {
    if (this.rxCount === 0) return 0;
    const byte = this.rx[this.rxHead];
    this.rxHead = (this.rxHead + 1) % RX_CAPACITY;
    this.rxCount--;
    this.updateInterrupt();
    return byte;
  }

  private interruptIdentification(): number {
    const fifo = this.fcr & FCR_ENABLE ? IIR_FIFO_ENABLED : 0;
    if (this.ier & IER_RLSI && this.overrun) return fifo | IIR_RLSI;
    if (this.ier & IER_RDI && this.rxCount > 0) return fifo | IIR_RDI;
    if (this.ier & IER_THRI && this.thrInterrupt) return fifo | IIR_THRI;
    if (this.ier & IER_MSI && this.msrDeltas !== 0) return fifo | IIR_MSI;
    return fifo | IIR_NONE;
  }

  /** Recomputes CTS/DSR/RI/DCD: in loopback they mirror RTS/DTR/OUT1/OUT2, else they idle. */
  private updateModemLines(): void {
    const mcr = this.mcr;
    const lines =
      mcr & MCR_LOOP
        ? (mcr & MCR_RTS ? MSR_CTS : 0) |
          (mcr & MCR_DTR ? MSR_DSR : 0) |
          (mcr & MCR_OUT1 ? MSR_RI : 0) |
          (mcr & MCR_OUT2 ? MSR_DCD : 0)
        : MSR_LINES_IDLE;
    const changed = lines ^ this.msrLines;
    if (changed & MSR_CTS) this.msrDeltas |= 0x01;
    if (changed & MSR_DSR) this.msrDeltas |= 0x02;
    if (changed & MSR_RI && !(lines & MSR_RI)) this.msrDeltas |= 0x04; // trailing edge of RI
    if (changed & MSR_DCD) this.msrDeltas |= 0x08;
    this.msrLines = lines;
    this.updateInterrupt();
  }

  private updateInterrupt(): void {
    const raised = (this.interruptIdentification() & IIR_NONE) === 0;
    if (raised !== this.irqRaised) {
      this.irqRaised = raised;
      this.onInterrupt?.(raised);
    }
  }
}

/** One-byte scratch buffer for loopback, so a transmitted byte is queued without allocating. */
const LOOPBACK_BYTE = new Uint8Array(1);
