/**
 * Opcode-table lines of the x87, MMX and SSE units, in the format of src/x86/opcodes.ts
 * (which merges them into the one table). The x87 escape opcodes D8-DF are listed in
 * opcodes.ts as "fpu" (x87.ts decodes their ModRM byte itself).
 *
 * Operands: V = XMM register (ModRM.reg), W = XMM register or memory (ModRM.rm), U = XMM
 * register only (rm), P = MMX register (reg), Q = MMX register or memory (rm), N = MMX
 * register only (rm), E/G = general registers, M = memory only, Ib = imm8. Sizes: x = 128
 * bits and 16-byte aligned in memory (#GP otherwise), u = 128 bits unaligned, q = 64, d = 32,
 * w = 16, b = 8, y = 32 or 64 by REX.W. Every line carries `fp`: the FP differential tester
 * (tests/cpu/fpdiff) covers them, not the integer one. F3/F2 lines come before 66 lines of
 * the same opcode: with both prefixes present, F3/F2 select the form, as on hardware.
 */
const L = String.raw;

const SSE_MOVES = L`
F3 0F 10 movss Vd,Wd fp
F2 0F 10 movsd Vq,Wq fp
66 0F 10 movupd Vx,Wu fp
0F 10 movups Vx,Wu fp
F3 0F 11 movss Wd,Vd fp
F2 0F 11 movsd Wq,Vq fp
66 0F 11 movupd Wu,Vx fp
0F 11 movups Wu,Vx fp
F3 0F 12 movsldup Vx,Wx fp
F2 0F 12 movddup Vx,Wq fp
66 0F 12 movlpd Vq,Mq fp
0F 12 movlps Vq,Wq fp
66 0F 13 movlpd Mq,Vq fp
0F 13 movlps Mq,Vq fp
66 0F 14 unpcklpd Vx,Wx fp
0F 14 unpcklps Vx,Wx fp
66 0F 15 unpckhpd Vx,Wx fp
0F 15 unpckhps Vx,Wx fp
F3 0F 16 movshdup Vx,Wx fp
66 0F 16 movhpd Vq,Mq fp
0F 16 movhps Vq,Wq fp
66 0F 17 movhpd Mq,Vq fp
0F 17 movhps Mq,Vq fp
66 0F 28 movapd Vx,Wx fp
0F 28 movaps Vx,Wx fp
66 0F 29 movapd Wx,Vx fp
0F 29 movaps Wx,Vx fp
66 0F 2B movntpd Mx,Vx fp
0F 2B movntps Mx,Vx fp
66 0F 50 movmskpd Gd,Ux fp
0F 50 movmskps Gd,Ux fp
66 0F 6E movd Vy,Ey fp
0F 6E movd Py,Ey fp
F3 0F 6F movdqu Vx,Wu fp
66 0F 6F movdqa Vx,Wx fp
0F 6F movq Pq,Qq fp
F3 0F 7E movq Vq,Wq fp
66 0F 7E movd Ey,Vy fp
0F 7E movd Ey,Py fp
F3 0F 7F movdqu Wu,Vx fp
66 0F 7F movdqa Wx,Vx fp
0F 7F movq Qq,Pq fp
0F 77 emms fp
0F AE/0 fxsave M fp
0F AE/1 fxrstor M fp
0F AE/2 ldmxcsr Md fp
0F AE/3 stmxcsr Md fp
0F C3 movnti My,Gy fp
F3 0F D6 movq2dq Vx,Nq fp
F2 0F D6 movdq2q Pq,Ux fp
66 0F D6 movq Wq,Vq fp
66 0F D7 pmovmskb Gd,Ux fp
0F D7 pmovmskb Gd,Nq fp
66 0F E7 movntdq Mx,Vx fp
0F E7 movntq Mq,Pq fp
F2 0F F0 lddqu Vx,Mu fp
66 0F F7 maskmovdqu Vx,Ux fp
0F F7 maskmovq Pq,Nq fp
66 0F 38 2A movntdqa Vx,Mx fp
`;

const SSE_FLOAT = L`
F3 0F 2A cvtsi2ss Vd,Ey fp
F2 0F 2A cvtsi2sd Vq,Ey fp
66 0F 2A cvtpi2pd Vx,Qq fp
0F 2A cvtpi2ps Vq,Qq fp
F3 0F 2C cvttss2si Gy,Wd fp
F2 0F 2C cvttsd2si Gy,Wq fp
66 0F 2C cvttpd2pi Pq,Wx fp
0F 2C cvttps2pi Pq,Wq fp
F3 0F 2D cvtss2si Gy,Wd fp
F2 0F 2D cvtsd2si Gy,Wq fp
66 0F 2D cvtpd2pi Pq,Wx fp
0F 2D cvtps2pi Pq,Wq fp
66 0F 2E ucomisd Vq,Wq fp
0F 2E ucomiss Vd,Wd fp
66 0F 2F comisd Vq,Wq fp
0F 2F comiss Vd,Wd fp
F3 0F 51 sqrtss Vd,Wd fp
F2 0F 51 sqrtsd Vq,Wq fp
66 0F 51 sqrtpd Vx,Wx fp
0F 51 sqrtps Vx,Wx fp
F3 0F 52 rsqrtss Vd,Wd fp
0F 52 rsqrtps Vx,Wx fp
F3 0F 53 rcpss Vd,Wd fp
0F 53 rcpps Vx,Wx fp
66 0F 54 andpd Vx,Wx fp
0F 54 andps Vx,Wx fp
66 0F 55 andnpd Vx,Wx fp
0F 55 andnps Vx,Wx fp
66 0F 56 orpd Vx,Wx fp
0F 56 orps Vx,Wx fp
66 0F 57 xorpd Vx,Wx fp
0F 57 xorps Vx,Wx fp
F3 0F 58 addss Vd,Wd fp
F2 0F 58 addsd Vq,Wq fp
66 0F 58 addpd Vx,Wx fp
0F 58 addps Vx,Wx fp
F3 0F 59 mulss Vd,Wd fp
F2 0F 59 mulsd Vq,Wq fp
66 0F 59 mulpd Vx,Wx fp
0F 59 mulps Vx,Wx fp
F3 0F 5A cvtss2sd Vq,Wd fp
F2 0F 5A cvtsd2ss Vd,Wq fp
66 0F 5A cvtpd2ps Vx,Wx fp
0F 5A cvtps2pd Vx,Wq fp
F3 0F 5B cvttps2dq Vx,Wx fp
66 0F 5B cvtps2dq Vx,Wx fp
0F 5B cvtdq2ps Vx,Wx fp
F3 0F 5C subss Vd,Wd fp
F2 0F 5C subsd Vq,Wq fp
66 0F 5C subpd Vx,Wx fp
0F 5C subps Vx,Wx fp
F3 0F 5D minss Vd,Wd fp
F2 0F 5D minsd Vq,Wq fp
66 0F 5D minpd Vx,Wx fp
0F 5D minps Vx,Wx fp
F3 0F 5E divss Vd,Wd fp
F2 0F 5E divsd Vq,Wq fp
66 0F 5E divpd Vx,Wx fp
0F 5E divps Vx,Wx fp
F3 0F 5F maxss Vd,Wd fp
F2 0F 5F maxsd Vq,Wq fp
66 0F 5F maxpd Vx,Wx fp
0F 5F maxps Vx,Wx fp
F2 0F 7C haddps Vx,Wx fp
66 0F 7C haddpd Vx,Wx fp
F2 0F 7D hsubps Vx,Wx fp
66 0F 7D hsubpd Vx,Wx fp
F3 0F C2 cmpss Vd,Wd,Ib fp
F2 0F C2 cmpsd Vq,Wq,Ib fp
66 0F C2 cmppd Vx,Wx,Ib fp
0F C2 cmpps Vx,Wx,Ib fp
66 0F C6 shufpd Vx,Wx,Ib fp
0F C6 shufps Vx,Wx,Ib fp
F2 0F D0 addsubps Vx,Wx fp
66 0F D0 addsubpd Vx,Wx fp
F3 0F E6 cvtdq2pd Vx,Wq fp
F2 0F E6 cvtpd2dq Vx,Wx fp
66 0F E6 cvttpd2dq Vx,Wx fp
66 0F 3A 08 roundps Vx,Wx,Ib fp
66 0F 3A 09 roundpd Vx,Wx,Ib fp
66 0F 3A 0A roundss Vd,Wd,Ib fp
66 0F 3A 0B roundsd Vq,Wq,Ib fp
66 0F 3A 0C blendps Vx,Wx,Ib fp
66 0F 3A 0D blendpd Vx,Wx,Ib fp
66 0F 38 14 blendvps Vx,Wx fp
66 0F 38 15 blendvpd Vx,Wx fp
66 0F 3A 17 extractps Ed,Vx,Ib fp
66 0F 3A 21 insertps Vx,Wd,Ib fp
66 0F 3A 40 dpps Vx,Wx,Ib fp
66 0F 3A 41 dppd Vx,Wx,Ib fp
`;

/** Packed integer operations: each has an MMX form (P,Q) and an SSE2 form (66: V,W). */
const INT_OPS: [string, string][] = [
  ["60", "punpcklbw"], ["61", "punpcklwd"], ["62", "punpckldq"], ["63", "packsswb"], ["64", "pcmpgtb"],
  ["65", "pcmpgtw"], ["66", "pcmpgtd"], ["67", "packuswb"], ["68", "punpckhbw"], ["69", "punpckhwd"],
  ["6A", "punpckhdq"], ["6B", "packssdw"], ["74", "pcmpeqb"], ["75", "pcmpeqw"], ["76", "pcmpeqd"],
  ["D1", "psrlw"], ["D2", "psrld"], ["D3", "psrlq"], ["D4", "paddq"], ["D5", "pmullw"], ["D8", "psubusb"],
  ["D9", "psubusw"], ["DA", "pminub"], ["DB", "pand"], ["DC", "paddusb"], ["DD", "paddusw"], ["DE", "pmaxub"],
  ["DF", "pandn"], ["E0", "pavgb"], ["E1", "psraw"], ["E2", "psrad"], ["E3", "pavgw"], ["E4", "pmulhuw"],
  ["E5", "pmulhw"], ["E8", "psubsb"], ["E9", "psubsw"], ["EA", "pminsw"], ["EB", "por"], ["EC", "paddsb"],
  ["ED", "paddsw"], ["EE", "pmaxsw"], ["EF", "pxor"], ["F1", "psllw"], ["F2", "pslld"], ["F3", "psllq"],
  ["F4", "pmuludq"], ["F5", "pmaddwd"], ["F6", "psadbw"], ["F8", "psubb"], ["F9", "psubw"], ["FA", "psubd"],
  ["FB", "psubq"], ["FC", "paddb"], ["FD", "paddw"], ["FE", "paddd"],
];
/** SSSE3 (0F 38): MMX and 66 forms. */
const SSSE3_OPS: [string, string][] = [
  ["00", "pshufb"], ["01", "phaddw"], ["02", "phaddd"], ["03", "phaddsw"], ["04", "pmaddubsw"], ["05", "phsubw"],
  ["06", "phsubd"], ["07", "phsubsw"], ["08", "psignb"], ["09", "psignw"], ["0A", "psignd"], ["0B", "pmulhrsw"],
  ["1C", "pabsb"], ["1D", "pabsw"], ["1E", "pabsd"],
];
/** SSE4.1/4.2 (66 0F 38). */
const SSE41_OPS: [string, string, string][] = [
  ["10", "pblendvb", "Vx,Wx"], ["17", "ptest", "Vx,Wx"], ["20", "pmovsxbw", "Vx,Wq"], ["21", "pmovsxbd", "Vx,Wd"],
  ["22", "pmovsxbq", "Vx,Ww"], ["23", "pmovsxwd", "Vx,Wq"], ["24", "pmovsxwq", "Vx,Wd"], ["25", "pmovsxdq", "Vx,Wq"],
  ["28", "pmuldq", "Vx,Wx"], ["29", "pcmpeqq", "Vx,Wx"], ["2B", "packusdw", "Vx,Wx"], ["30", "pmovzxbw", "Vx,Wq"],
  ["31", "pmovzxbd", "Vx,Wd"], ["32", "pmovzxbq", "Vx,Ww"], ["33", "pmovzxwd", "Vx,Wq"], ["34", "pmovzxwq", "Vx,Wd"],
  ["35", "pmovzxdq", "Vx,Wq"], ["37", "pcmpgtq", "Vx,Wx"], ["38", "pminsb", "Vx,Wx"], ["39", "pminsd", "Vx,Wx"],
  ["3A", "pminuw", "Vx,Wx"], ["3B", "pminud", "Vx,Wx"], ["3C", "pmaxsb", "Vx,Wx"], ["3D", "pmaxsd", "Vx,Wx"],
  ["3E", "pmaxuw", "Vx,Wx"], ["3F", "pmaxud", "Vx,Wx"], ["40", "pmulld", "Vx,Wx"], ["41", "phminposuw", "Vx,Wx"],
];

const SSE_INT_MISC = L`
F3 0F 70 pshufhw Vx,Wx,Ib fp
F2 0F 70 pshuflw Vx,Wx,Ib fp
66 0F 70 pshufd Vx,Wx,Ib fp
0F 70 pshufw Pq,Qq,Ib fp
66 0F 71/2 psrlw Ux,Ib fp
66 0F 71/4 psraw Ux,Ib fp
66 0F 71/6 psllw Ux,Ib fp
0F 71/2 psrlw Nq,Ib fp
0F 71/4 psraw Nq,Ib fp
0F 71/6 psllw Nq,Ib fp
66 0F 72/2 psrld Ux,Ib fp
66 0F 72/4 psrad Ux,Ib fp
66 0F 72/6 pslld Ux,Ib fp
0F 72/2 psrld Nq,Ib fp
0F 72/4 psrad Nq,Ib fp
0F 72/6 pslld Nq,Ib fp
66 0F 73/2 psrlq Ux,Ib fp
66 0F 73/3 psrldq Ux,Ib fp
66 0F 73/6 psllq Ux,Ib fp
66 0F 73/7 pslldq Ux,Ib fp
0F 73/2 psrlq Nq,Ib fp
0F 73/6 psllq Nq,Ib fp
66 0F 6C punpcklqdq Vx,Wx fp
66 0F 6D punpckhqdq Vx,Wx fp
66 0F C4 pinsrw Vx,Ed,Ib fp
0F C4 pinsrw Pq,Ed,Ib fp
66 0F C5 pextrw Gd,Ux,Ib fp
0F C5 pextrw Gd,Nq,Ib fp
66 0F 3A 0F palignr Vx,Wx,Ib fp
0F 3A 0F palignr Pq,Qq,Ib fp
66 0F 3A 0E pblendw Vx,Wx,Ib fp
66 0F 3A 14 pextrb Ed,Vx,Ib fp
66 0F 3A 15 pextrw Ed,Vx,Ib fp
66 0F 3A 16 pextrd Ey,Vx,Ib fp
66 0F 3A 20 pinsrb Vx,Ed,Ib fp
66 0F 3A 22 pinsrd Vx,Ey,Ib fp
66 0F 3A 42 mpsadbw Vx,Wx,Ib fp
66 0F 3A 60 pcmpestrm Vx,Wu,Ib fp
66 0F 3A 61 pcmpestri Vx,Wu,Ib fp
66 0F 3A 62 pcmpistrm Vx,Wu,Ib fp
66 0F 3A 63 pcmpistri Vx,Wu,Ib fp
F2 0F 38 F0 crc32 Gd,Eb fp
F2 0F 38 F1 crc32 Gd,Ey fp
`;

function intLines(): string {
  const out: string[] = [];
  for (const [op, mn] of INT_OPS) {
    out.push(`66 0F ${op} ${mn} Vx,Wx fp`);
    out.push(`0F ${op} ${mn} Pq,Qq fp`);
  }
  for (const [op, mn] of SSSE3_OPS) {
    out.push(`66 0F 38 ${op} ${mn} Vx,Wx fp`);
    out.push(`0F 38 ${op} ${mn} Pq,Qq fp`);
  }
  for (const [op, mn, ops] of SSE41_OPS) out.push(`66 0F 38 ${op} ${mn} ${ops} fp`);
  return out.join("\n");
}

export const FP_OPCODE_LINES = [SSE_MOVES, SSE_FLOAT, SSE_INT_MISC, intLines()].join("\n");
