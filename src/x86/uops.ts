/**
 * Micro-ops: the interpreter's pre-decoded form of the common instructions.
 *
 * Each instruction of a block has one record of UOP_STRIDE int32 words in `Block.uops`:
 * [op, a, b, c, d, e, f, g]. Two loops in cpu.ts execute them: runFast, call-free, takes the
 * common kinds on their fast paths only; runUops, the full switch, takes every kind and the
 * records runFast hands back; its U_CLOSURE calls the instruction's closure (compile.ts), which
 * stays the reference semantics for every instruction and the only path for single-stepping.
 *
 * Invariants:
 * - compile.ts writes a record (into UOP) only next to the closure it mirrors, and the case in
 *   cpu.ts does exactly what that closure does, in the same order (every access that can fault
 *   before any register or flag write); the closure stays the reference.
 * - runFast either finishes a record or leaves it wholly undone (no state written) and hands it
 *   to runUops: it never faults and never calls out.
 * - Record i belongs to instruction i: the run loop's instruction index is the fault index.
 * - Memory records: b = base word (-1 none), c = index word (-1 none), d = scale, e = disp
 *   (or the whole address when constant), f = high word of disp/address, g = segment | flags.
 */

export const UOP_STRIDE = 8;

/** g of a memory record: the segment in bits 0..7, then these flags. */
export const UF_EA64 = 1 << 8; // 64-bit address computation (high word from base/index/disp)
export const UF_OS64 = 1 << 9; // LEA: 64-bit destination

export const U_CLOSURE = 0;
// 32-bit register forms (a = destination word).
export const U_ADD_RR32 = 1; // b = source word
export const U_ADD_RI32 = 2; // b = imm
export const U_SUB_RR32 = 3; // b = source word, c = write (sub) or not (cmp)
export const U_SUB_RI32 = 4; // b = imm, c = write
export const U_ALU_RR32 = 5; // b = source word, c = alu op, d = write
export const U_ALU_RI32 = 6; // b = imm, c = alu op, d = write
export const U_XOR_ZERO32 = 7;
export const U_INCDEC32 = 8; // b = +1 / -1, c = CC_OP kind
export const U_MOV_RR32 = 9; // b = source word
export const U_MOV_RI32 = 10; // b = value
export const U_LOAD32 = 11; // memory record
export const U_STORE32 = 12; // memory record
export const U_LEA = 13; // memory record (g flags say the width)
export const U_PUSH32 = 14; // a = source word (32-bit stack)
export const U_POP32 = 15; // a = destination word (32-bit stack)
export const U_CALL32 = 16; // a = return address, b = target (32-bit stack)
export const U_RET32 = 17; // 32-bit stack
export const U_JCC = 18; // a = cc, b/c = target lo/hi, d/e = next lo/hi, f = 1 if the target is the block's start
export const U_JMP = 19; // a = target lo, b = target hi, c = write the high word, d = 1 if the target is the block's start
// 64-bit forms.
export const U_ALU_RR64 = 20; // b = source word, c = alu op, d = write
export const U_ALU_RI64 = 21; // b = imm lo, c = imm hi, d = alu op, e = write
export const U_INCDEC64 = 22; // b = 1 inc / 0 dec, c = CC_OP kind
export const U_MOV_RR64 = 23; // b = source word
export const U_MOV_RI64 = 24; // b = lo, c = hi
export const U_LOAD64 = 25; // memory record
export const U_STORE64 = 26; // memory record
export const U_PUSH64 = 27; // a = source word (64-bit stack)
export const U_POP64 = 28; // a = destination word
export const U_CALL64 = 29; // a/b = return lo/hi, c/d = target lo/hi
export const U_RET64 = 30;
/** After the last instruction of a block (and everywhere once the block is invalidated). */
export const U_END = 31;
export const U_LOGIC_RR32 = 32; // b = source word, c = alu op (1 or, 4 and/test, 6 xor), d = write
export const U_LOGIC_RI32 = 33; // b = imm, c = alu op, d = write
// Fused pairs: a flag producer at record i and the JCC at record i + 1 (the block's last
// instruction), executed by one dispatch. The JCC's fields are read from record i + 1.
export const U_INCDEC32_JCC = 34; // as U_INCDEC32
export const U_SUB32_JCC = 35; // a = destination word, b = source word or imm, c = write, d = 1 for imm
export const U_LOGIC32_JCC = 36; // a, b, c = alu op, d = write, e = 1 for imm
export const U_INCDEC64_JCC = 37; // as U_INCDEC64
// U_LOAD32 / U_STORE32 with 32-bit addressing (no UF_EA64): the kinds buildBlock gives them so
// that the fast loop's case for the common form stays short. Same record layout.
export const U_LOAD32_A32 = 38;
export const U_STORE32_A32 = 39;
// Memory forms that only the fast loop takes (runUops runs their closure), 32-bit addressing
// only (buildBlock turns UF_EA64 ones back into U_CLOSURE). Memory records.
export const U_LOADX8 = 40; // MOVZX/MOVSX r32/r64, m8: g has UF_SIGNED, UF_OS64
export const U_LOADX16 = 41; // MOVZX/MOVSX r32/r64, m16
export const U_ALU_M32 = 42; // a = the register word; ALU op in g bits 12..15, UF_MEMDST, UF_WRITE
export const UF_SIGNED = 1 << 10; // U_LOADX*: sign-extend
export const UF_MEMDST = 1 << 16; // U_ALU_M32: the memory operand is the destination (op mem, reg)
export const UF_WRITE = 1 << 17; // U_ALU_M32: the result is written (not CMP/TEST)
// Calls followed inside a block (interpreter only: buildBlock with the block compiler off, 32-bit
// code): the CALL pushes and the block goes on at the target; the callee's RET goes on after the
// call if it pops the address the call pushed, else it is a branch to what it popped.
export const U_CALL32_IN = 43; // a = return address, b = target (as U_CALL32)
export const U_RET32_PRED = 44; // a = the return address expected
