/**
 * Opcode-table lines of the x87, MMX and SSE units, in the format of src/x86/opcodes.ts
 * (which merges them into the one table). Empty until those units exist: the x87 escape
 * opcodes D8-DF are listed in opcodes.ts as "fpu" and compile to #NM/#UD.
 */
export const FP_OPCODE_LINES = ``;
