/**
 * The declarative opcode table. The decoder, the compiler's dispatch and the differential
 * test generator are all derived from it, so what the processor claims to implement is
 * exactly what is decoded and what is tested.
 *
 * Each line: `[PFX] [0F [38|3A]] OP[/digit|=modrm] mnemonic [operands] [flags...]`.
 * - PFX: a mandatory prefix (F3, F2 or 66) selecting this form.
 * - /digit: modrm.reg for group opcodes; =XX: an exact modrm byte (register forms of 0F 01).
 * - operands, Intel-manual style: E (r/m), G (reg), M (memory only), S (segment register),
 *   C/D (control/debug register), R (register only, in r/m), Z (register in the opcode's low
 *   bits), I (immediate), J (relative branch), A (far pointer), O (moffs); sizes b, w, d, q,
 *   v (16/32/64 by operand size), z (16/32), p (far pointer), a (bound pair). AL, eAX, DX,
 *   CL, 1 are implicit operands.
 * - flags: lock (LOCK allowed with a memory operand), end (ends a decoded block), priv (CPL 0
 *   only), i64 (invalid in 64-bit mode), o64 (64-bit mode only), d64 (operand size defaults to
 *   64 in 64-bit mode), f64 (operand size is 64 in 64-bit mode whatever the prefix),
 *   uf:LETTERS (flags the manuals leave undefined: O S Z A P C), nouser (not testable in a
 *   user-mode differential test: privileged, I/O, or leaves the snippet), fp (x87/MMX/SSE:
 *   tested by the floating-point differential tester, tests/cpu/fpdiff, not the integer one).
 */

import { FP_OPCODE_LINES } from "./fp/opcodes.ts";

export interface OpcodeEntry {
  /** 0: one-byte map, 1: 0F, 2: 0F 38, 3: 0F 3A. */
  readonly map: number;
  readonly opcode: number;
  /** modrm.reg for group entries, else -1. */
  readonly group: number;
  /** An exact modrm byte (register forms of 0F 01), else -1. */
  readonly modrmExact: number;
  /** Mandatory prefix (0xF3, 0xF2, 0x66), else 0. */
  readonly prefix: number;
  readonly mnemonic: string;
  /** Operand specifiers, e.g. ["Ev", "Gv"]. */
  readonly operands: readonly string[];
  readonly hasModrm: boolean;
  /** Bitmask: 1 = valid outside 64-bit mode, 2 = valid in 64-bit mode. */
  readonly modes: number;
  readonly lock: boolean;
  readonly endsBlock: boolean;
  readonly privileged: boolean;
  readonly d64: boolean;
  readonly f64: boolean;
  /** EFLAGS bits this instruction leaves undefined. */
  readonly undefinedFlags: number;
  /** Runs in ring 3 under Linux without leaving the snippet: the differential tester may use it. */
  readonly userTestable: boolean;
  readonly memoryOnly: boolean;
  readonly registerOnly: boolean;
}

const X = "nouser"; // shorthand

// One-byte opcodes.
const ONE_BYTE = `
00 add Eb,Gb lock
01 add Ev,Gv lock
02 add Gb,Eb
03 add Gv,Ev
04 add AL,Ib
05 add eAX,Iz
06 push ES i64 ${X}
07 pop ES i64 end ${X}
08 or Eb,Gb lock uf:A
09 or Ev,Gv lock uf:A
0A or Gb,Eb uf:A
0B or Gv,Ev uf:A
0C or AL,Ib uf:A
0D or eAX,Iz uf:A
0E push CS i64 ${X}
10 adc Eb,Gb lock
11 adc Ev,Gv lock
12 adc Gb,Eb
13 adc Gv,Ev
14 adc AL,Ib
15 adc eAX,Iz
16 push SS i64 ${X}
17 pop SS i64 end ${X}
18 sbb Eb,Gb lock
19 sbb Ev,Gv lock
1A sbb Gb,Eb
1B sbb Gv,Ev
1C sbb AL,Ib
1D sbb eAX,Iz
1E push DS i64 ${X}
1F pop DS i64 end ${X}
20 and Eb,Gb lock uf:A
21 and Ev,Gv lock uf:A
22 and Gb,Eb uf:A
23 and Gv,Ev uf:A
24 and AL,Ib uf:A
25 and eAX,Iz uf:A
27 daa i64 uf:O
28 sub Eb,Gb lock
29 sub Ev,Gv lock
2A sub Gb,Eb
2B sub Gv,Ev
2C sub AL,Ib
2D sub eAX,Iz
2F das i64 uf:O
30 xor Eb,Gb lock uf:A
31 xor Ev,Gv lock uf:A
32 xor Gb,Eb uf:A
33 xor Gv,Ev uf:A
34 xor AL,Ib uf:A
35 xor eAX,Iz uf:A
37 aaa i64 uf:OSZP
38 cmp Eb,Gb
39 cmp Ev,Gv
3A cmp Gb,Eb
3B cmp Gv,Ev
3C cmp AL,Ib
3D cmp eAX,Iz
3F aas i64 uf:OSZP
40 inc Zv i64
41 inc Zv i64
42 inc Zv i64
43 inc Zv i64
44 inc Zv i64
45 inc Zv i64
46 inc Zv i64
47 inc Zv i64
48 dec Zv i64
49 dec Zv i64
4A dec Zv i64
4B dec Zv i64
4C dec Zv i64
4D dec Zv i64
4E dec Zv i64
4F dec Zv i64
50 push Zv d64
51 push Zv d64
52 push Zv d64
53 push Zv d64
54 push Zv d64
55 push Zv d64
56 push Zv d64
57 push Zv d64
58 pop Zv d64
59 pop Zv d64
5A pop Zv d64
5B pop Zv d64
5C pop Zv d64
5D pop Zv d64
5E pop Zv d64
5F pop Zv d64
60 pusha i64
61 popa i64
62 bound Gv,Ma i64 ${X}
63 arpl Ew,Gw i64 ${X}
63 movsxd Gv,Ed o64
68 push Iz d64
69 imul Gv,Ev,Iz uf:SZAP
6A push Ib d64
6B imul Gv,Ev,Ib uf:SZAP
6C ins Yb,DX ${X}
6D ins Yz,DX ${X}
6E outs DX,Xb ${X}
6F outs DX,Xz ${X}
70 jcc Jb end
71 jcc Jb end
72 jcc Jb end
73 jcc Jb end
74 jcc Jb end
75 jcc Jb end
76 jcc Jb end
77 jcc Jb end
78 jcc Jb end
79 jcc Jb end
7A jcc Jb end
7B jcc Jb end
7C jcc Jb end
7D jcc Jb end
7E jcc Jb end
7F jcc Jb end
80/0 add Eb,Ib lock
80/1 or Eb,Ib lock uf:A
80/2 adc Eb,Ib lock
80/3 sbb Eb,Ib lock
80/4 and Eb,Ib lock uf:A
80/5 sub Eb,Ib lock
80/6 xor Eb,Ib lock uf:A
80/7 cmp Eb,Ib
81/0 add Ev,Iz lock
81/1 or Ev,Iz lock uf:A
81/2 adc Ev,Iz lock
81/3 sbb Ev,Iz lock
81/4 and Ev,Iz lock uf:A
81/5 sub Ev,Iz lock
81/6 xor Ev,Iz lock uf:A
81/7 cmp Ev,Iz
82/0 add Eb,Ib lock i64
82/1 or Eb,Ib lock i64 uf:A
82/2 adc Eb,Ib lock i64
82/3 sbb Eb,Ib lock i64
82/4 and Eb,Ib lock i64 uf:A
82/5 sub Eb,Ib lock i64
82/6 xor Eb,Ib lock i64 uf:A
82/7 cmp Eb,Ib i64
83/0 add Ev,Ib lock
83/1 or Ev,Ib lock uf:A
83/2 adc Ev,Ib lock
83/3 sbb Ev,Ib lock
83/4 and Ev,Ib lock uf:A
83/5 sub Ev,Ib lock
83/6 xor Ev,Ib lock uf:A
83/7 cmp Ev,Ib
84 test Eb,Gb uf:A
85 test Ev,Gv uf:A
86 xchg Eb,Gb lock
87 xchg Ev,Gv lock
88 mov Eb,Gb
89 mov Ev,Gv
8A mov Gb,Eb
8B mov Gv,Ev
8C mov Ev,Sw
8D lea Gv,M
8E mov Sw,Ew end ${X}
8F/0 pop Ev d64
90 nop
F3 90 pause
91 xchg Zv,eAX
92 xchg Zv,eAX
93 xchg Zv,eAX
94 xchg Zv,eAX
95 xchg Zv,eAX
96 xchg Zv,eAX
97 xchg Zv,eAX
98 cbw
99 cwd
9A callf Ap i64 end ${X}
9B fwait
9C pushf d64
9D popf d64 end
9E sahf
9F lahf
A0 mov AL,Ob
A1 mov eAX,Ov
A2 mov Ob,AL
A3 mov Ov,eAX
A4 movs Yb,Xb
A5 movs Yv,Xv
A6 cmps Xb,Yb
A7 cmps Xv,Yv
A8 test AL,Ib uf:A
A9 test eAX,Iz uf:A
AA stos Yb,AL
AB stos Yv,eAX
AC lods AL,Xb
AD lods eAX,Xv
AE scas AL,Yb
AF scas eAX,Yv
B0 mov Zb,Ib
B1 mov Zb,Ib
B2 mov Zb,Ib
B3 mov Zb,Ib
B4 mov Zb,Ib
B5 mov Zb,Ib
B6 mov Zb,Ib
B7 mov Zb,Ib
B8 mov Zv,Iv
B9 mov Zv,Iv
BA mov Zv,Iv
BB mov Zv,Iv
BC mov Zv,Iv
BD mov Zv,Iv
BE mov Zv,Iv
BF mov Zv,Iv
C0/0 rol Eb,Ib uf:O
C0/1 ror Eb,Ib uf:O
C0/2 rcl Eb,Ib uf:O
C0/3 rcr Eb,Ib uf:O
C0/4 shl Eb,Ib uf:OA
C0/5 shr Eb,Ib uf:OA
C0/6 shl Eb,Ib uf:OA
C0/7 sar Eb,Ib uf:OA
C1/0 rol Ev,Ib uf:O
C1/1 ror Ev,Ib uf:O
C1/2 rcl Ev,Ib uf:O
C1/3 rcr Ev,Ib uf:O
C1/4 shl Ev,Ib uf:OA
C1/5 shr Ev,Ib uf:OA
C1/6 shl Ev,Ib uf:OA
C1/7 sar Ev,Ib uf:OA
C2 ret Iw f64 end
C3 ret f64 end
C4 les Gz,Mp i64 ${X}
C5 lds Gz,Mp i64 ${X}
C6/0 mov Eb,Ib
C7/0 mov Ev,Iz
C8 enter Iw,Ib d64
C9 leave d64
CA retf Iw end ${X}
CB retf end ${X}
CC int3 end ${X}
CD int Ib end ${X}
CE into i64 end ${X}
CF iret end ${X}
D0/0 rol Eb,1
D0/1 ror Eb,1
D0/2 rcl Eb,1
D0/3 rcr Eb,1
D0/4 shl Eb,1 uf:A
D0/5 shr Eb,1 uf:A
D0/6 shl Eb,1 uf:A
D0/7 sar Eb,1 uf:A
D1/0 rol Ev,1
D1/1 ror Ev,1
D1/2 rcl Ev,1
D1/3 rcr Ev,1
D1/4 shl Ev,1 uf:A
D1/5 shr Ev,1 uf:A
D1/6 shl Ev,1 uf:A
D1/7 sar Ev,1 uf:A
D2/0 rol Eb,CL uf:O
D2/1 ror Eb,CL uf:O
D2/2 rcl Eb,CL uf:O
D2/3 rcr Eb,CL uf:O
D2/4 shl Eb,CL uf:OA
D2/5 shr Eb,CL uf:OA
D2/6 shl Eb,CL uf:OA
D2/7 sar Eb,CL uf:OA
D3/0 rol Ev,CL uf:O
D3/1 ror Ev,CL uf:O
D3/2 rcl Ev,CL uf:O
D3/3 rcr Ev,CL uf:O
D3/4 shl Ev,CL uf:OA
D3/5 shr Ev,CL uf:OA
D3/6 shl Ev,CL uf:OA
D3/7 sar Ev,CL uf:OA
D4 aam Ib i64 uf:OAC
D5 aad Ib i64 uf:OAC
D6 salc i64
D7 xlat
D8 fpu Ex ${X}
D9 fpu Ex ${X}
DA fpu Ex ${X}
DB fpu Ex ${X}
DC fpu Ex ${X}
DD fpu Ex ${X}
DE fpu Ex ${X}
DF fpu Ex ${X}
E0 loopne Jb f64 end
E1 loope Jb f64 end
E2 loop Jb f64 end
E3 jcxz Jb f64 end
E4 in AL,Ib ${X}
E5 in eAX,Ib ${X}
E6 out Ib,AL ${X}
E7 out Ib,eAX ${X}
E8 call Jz f64 end
E9 jmp Jz f64 end
EA jmpf Ap i64 end ${X}
EB jmp Jb f64 end
EC in AL,DX ${X}
ED in eAX,DX ${X}
EE out DX,AL ${X}
EF out DX,eAX ${X}
F1 int1 end ${X}
F4 hlt priv end ${X}
F5 cmc
F6/0 test Eb,Ib uf:A
F6/1 test Eb,Ib uf:A
F6/2 not Eb lock
F6/3 neg Eb lock
F6/4 mul Eb uf:SZAP
F6/5 imul Eb uf:SZAP
F6/6 div Eb uf:OSZAPC
F6/7 idiv Eb uf:OSZAPC
F7/0 test Ev,Iz uf:A
F7/1 test Ev,Iz uf:A
F7/2 not Ev lock
F7/3 neg Ev lock
F7/4 mul Ev uf:SZAP
F7/5 imul Ev uf:SZAP
F7/6 div Ev uf:OSZAPC
F7/7 idiv Ev uf:OSZAPC
F8 clc
F9 stc
FA cli ${X}
FB sti end ${X}
FC cld
FD std
FE/0 inc Eb lock
FE/1 dec Eb lock
FF/0 inc Ev lock
FF/1 dec Ev lock
FF/2 call Ev f64 end
FF/3 callf Mp end ${X}
FF/4 jmp Ev f64 end
FF/5 jmpf Mp end ${X}
FF/6 push Ev d64
`;

const TWO_BYTE = `
0F 00/0 sldt Ew ${X}
0F 00/1 str Ew ${X}
0F 00/2 lldt Ew priv ${X}
0F 00/3 ltr Ew priv ${X}
0F 00/4 verr Ew ${X}
0F 00/5 verw Ew ${X}
0F 01=C8 monitor ${X}
0F 01=C9 mwait ${X}
0F 01=D0 xgetbv ${X}
0F 01=F8 swapgs o64 priv ${X}
0F 01=F9 rdtscp ${X}
0F 01/0 sgdt M ${X}
0F 01/1 sidt M ${X}
0F 01/2 lgdt M priv ${X}
0F 01/3 lidt M priv ${X}
0F 01/4 smsw Ew ${X}
0F 01/6 lmsw Ew priv end ${X}
0F 01/7 invlpg M priv end ${X}
0F 02 lar Gv,Ew ${X}
0F 03 lsl Gv,Ew ${X}
0F 05 syscall end ${X}
0F 06 clts priv ${X}
0F 07 sysret priv end ${X}
0F 08 invd priv ${X}
0F 09 wbinvd priv ${X}
0F 0B ud2 end ${X}
0F 0D nop Ev
0F 18 nop Ev
0F 19 nop Ev
0F 1A nop Ev
0F 1B nop Ev
0F 1C nop Ev
0F 1D nop Ev
0F 1E nop Ev
0F 1F nop Ev
0F 20 movcr Rd,Cd priv ${X}
0F 21 movdr Rd,Dd priv ${X}
0F 22 movcr Cd,Rd priv end ${X}
0F 23 movdr Dd,Rd priv end ${X}
0F 30 wrmsr priv end ${X}
0F 31 rdtsc ${X}
0F 32 rdmsr priv ${X}
0F 34 sysenter end ${X}
0F 35 sysexit priv end ${X}
0F 40 cmovcc Gv,Ev
0F 41 cmovcc Gv,Ev
0F 42 cmovcc Gv,Ev
0F 43 cmovcc Gv,Ev
0F 44 cmovcc Gv,Ev
0F 45 cmovcc Gv,Ev
0F 46 cmovcc Gv,Ev
0F 47 cmovcc Gv,Ev
0F 48 cmovcc Gv,Ev
0F 49 cmovcc Gv,Ev
0F 4A cmovcc Gv,Ev
0F 4B cmovcc Gv,Ev
0F 4C cmovcc Gv,Ev
0F 4D cmovcc Gv,Ev
0F 4E cmovcc Gv,Ev
0F 4F cmovcc Gv,Ev
0F 80 jcc Jz f64 end
0F 81 jcc Jz f64 end
0F 82 jcc Jz f64 end
0F 83 jcc Jz f64 end
0F 84 jcc Jz f64 end
0F 85 jcc Jz f64 end
0F 86 jcc Jz f64 end
0F 87 jcc Jz f64 end
0F 88 jcc Jz f64 end
0F 89 jcc Jz f64 end
0F 8A jcc Jz f64 end
0F 8B jcc Jz f64 end
0F 8C jcc Jz f64 end
0F 8D jcc Jz f64 end
0F 8E jcc Jz f64 end
0F 8F jcc Jz f64 end
0F 90 setcc Eb
0F 91 setcc Eb
0F 92 setcc Eb
0F 93 setcc Eb
0F 94 setcc Eb
0F 95 setcc Eb
0F 96 setcc Eb
0F 97 setcc Eb
0F 98 setcc Eb
0F 99 setcc Eb
0F 9A setcc Eb
0F 9B setcc Eb
0F 9C setcc Eb
0F 9D setcc Eb
0F 9E setcc Eb
0F 9F setcc Eb
0F A0 push FS d64 ${X}
0F A1 pop FS d64 end ${X}
0F A2 cpuid end ${X}
0F A3 bt Ev,Gv uf:OSAP
0F A4 shld Ev,Gv,Ib uf:OA
0F A5 shld Ev,Gv,CL uf:OA
0F A8 push GS d64 ${X}
0F A9 pop GS d64 end ${X}
0F AB bts Ev,Gv lock uf:OSAP
0F AC shrd Ev,Gv,Ib uf:OA
0F AD shrd Ev,Gv,CL uf:OA
0F AE=E8 lfence
0F AE=F0 mfence
0F AE=F8 sfence
0F AE/7 clflush M ${X}
0F AF imul Gv,Ev uf:SZAP
0F B0 cmpxchg Eb,Gb lock
0F B1 cmpxchg Ev,Gv lock
0F B2 lss Gz,Mp ${X}
0F B3 btr Ev,Gv lock uf:OSAP
0F B4 lfs Gz,Mp ${X}
0F B5 lgs Gz,Mp ${X}
0F B6 movzx Gv,Eb
0F B7 movzx Gv,Ew
F3 0F B8 popcnt Gv,Ev
0F B9 ud1 Gv,Ev end ${X}
0F BA/4 bt Ev,Ib uf:OSAP
0F BA/5 bts Ev,Ib lock uf:OSAP
0F BA/6 btr Ev,Ib lock uf:OSAP
0F BA/7 btc Ev,Ib lock uf:OSAP
0F BB btc Ev,Gv lock uf:OSAP
0F BC bsf Gv,Ev uf:OSAPC
F3 0F BC tzcnt Gv,Ev uf:OSAP
0F BD bsr Gv,Ev uf:OSAPC
F3 0F BD lzcnt Gv,Ev uf:OSAP
0F BE movsx Gv,Eb
0F BF movsx Gv,Ew
0F C0 xadd Eb,Gb lock
0F C1 xadd Ev,Gv lock
0F C7/1 cmpxchg8b Mq lock
F3 0F C7/7 rdpid Rd ${X}
0F C8 bswap Zv
0F C9 bswap Zv
0F CA bswap Zv
0F CB bswap Zv
0F CC bswap Zv
0F CD bswap Zv
0F CE bswap Zv
0F CF bswap Zv
0F FF ud0 Gv,Ev end ${X}
0F 38 F0 movbe Gv,Mv
0F 38 F1 movbe Mv,Gv
`;

const FLAG_LETTERS: Record<string, number> = { C: 1, P: 4, A: 16, Z: 64, S: 128, O: 2048 };

function parseLine(line: string): OpcodeEntry {
  const words = line.trim().split(/\s+/);
  let i = 0;
  let prefix = 0;
  if (/^(F3|F2|66)$/.test(words[0]) && words.length > 1 && /^[0-9A-F]{2}/.test(words[1])) {
    prefix = Number.parseInt(words[0], 16);
    i++;
  }
  let map = 0;
  if (words[i] === "0F") {
    map = 1;
    i++;
    if (words[i] === "38" || words[i] === "3A") {
      map = words[i] === "38" ? 2 : 3;
      i++;
    }
  }
  const m = /^([0-9A-F]{2})(?:\/([0-7])|=([0-9A-F]{2}))?$/.exec(words[i++]);
  if (!m) throw new Error(`opcode table: bad opcode in "${line}"`);
  const opcode = Number.parseInt(m[1], 16);
  const group = m[2] !== undefined ? Number(m[2]) : -1;
  const modrmExact = m[3] !== undefined ? Number.parseInt(m[3], 16) : -1;
  const mnemonic = words[i++];
  let operands: string[] = [];
  if (i < words.length && !isFlag(words[i])) operands = words[i++].split(",");
  const flags = words.slice(i);
  for (const f of flags) if (!isFlag(f)) throw new Error(`opcode table: unknown flag ${f} in "${line}"`);
  let undefinedFlags = 0;
  for (const f of flags) if (f.startsWith("uf:")) for (const c of f.slice(3)) undefinedFlags |= FLAG_LETTERS[c];
  // V W U (XMM) and P Q N (MMX) are the x87/SSE unit's ModRM operands (src/x86/fp/opcodes.ts).
  const hasModrm = group >= 0 || modrmExact >= 0 || operands.some((o) => /^[EGMR][a-z]$|^(Sw|Cd|Dd)$|^[VWUPQN][a-z]*$/.test(o));
  const i64 = flags.includes("i64");
  const o64 = flags.includes("o64");
  return {
    map,
    opcode,
    group,
    modrmExact,
    prefix,
    mnemonic,
    operands,
    hasModrm,
    modes: i64 ? 1 : o64 ? 2 : 3,
    lock: flags.includes("lock"),
    endsBlock: flags.includes("end"),
    privileged: flags.includes("priv"),
    d64: flags.includes("d64"),
    f64: flags.includes("f64"),
    undefinedFlags,
    userTestable: !flags.includes("nouser") && !flags.includes("priv") && !flags.includes("fp"),
    memoryOnly: operands.some((o) => /^M[a-z]?$/.test(o)),
    registerOnly: operands.some((o) => /^R[a-z]$/.test(o)),
  };
}

function isFlag(w: string): boolean {
  return /^(lock|end|priv|i64|o64|d64|f64|nouser|fp|uf:[OSZAPC]+)$/.test(w);
}

export const OPCODES: readonly OpcodeEntry[] = [...ONE_BYTE.split("\n"), ...TWO_BYTE.split("\n"), ...FP_OPCODE_LINES.split("\n")]
  .filter((l) => l.trim() !== "")
  .map(parseLine);

/**
 * Lookup structure for the decoder: for map m and opcode byte b, LOOKUP[m * 256 + b] is the list
 * of entries sharing that byte (several when they differ by group, exact modrm, prefix or mode).
 */
export const LOOKUP: (readonly OpcodeEntry[] | undefined)[] = new Array(4 * 256);
for (const e of OPCODES) {
  const k = e.map * 256 + e.opcode;
  const list = (LOOKUP[k] as OpcodeEntry[] | undefined) ?? [];
  list.push(e);
  LOOKUP[k] = list;
}

/** Prefix bytes that are never opcodes. */
export function isLegacyPrefix(b: number): boolean {
  return (
    b === 0x26 || b === 0x2e || b === 0x36 || b === 0x3e || b === 0x64 || b === 0x65 ||
    b === 0x66 || b === 0x67 || b === 0xf0 || b === 0xf2 || b === 0xf3
  );
}
