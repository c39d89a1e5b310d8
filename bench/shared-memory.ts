// Micro-benchmark behind the choice in src/machine/memory.ts: does a `shared: true`
// WebAssembly.Memory (a SharedArrayBuffer) make typed-array loads and stores slower than an
// ordinary one? Run: node --import tsx bench/shared-memory.ts
// Prints millions of read-modify-write operations per second for Uint8Array and Int32Array
// views, twice per kind so that the second round shows the warmed-up figure.

const PAGES = 2048; // 128 MiB, the default machine size
const N = 50_000_000;

function views(shared: boolean) {
  const mem = new WebAssembly.Memory({ initial: PAGES, maximum: PAGES, shared });
  return { u8: new Uint8Array(mem.buffer), i32: new Int32Array(mem.buffer) };
}

function loopU8(u8: Uint8Array, n: number): number {
  let sum = 0;
  for (let k = 0; k < n; k++) {
    const a = (k * 4097) & 0xffff;
    u8[a] = (u8[a] + k) & 0xff;
    sum = (sum + u8[(a + 7) & 0xffff]) | 0;
  }
  return sum;
}

function loopI32(i32: Int32Array, n: number): number {
  let sum = 0;
  for (let k = 0; k < n; k++) {
    const a = (k * 1025) & 0x3fff;
    i32[a] = (i32[a] + k) | 0;
    sum = (sum + i32[(a + 3) & 0x3fff]) | 0;
  }
  return sum;
}

for (const shared of [false, true, false, true]) {
  const { u8, i32 } = views(shared);
  let t = performance.now();
  loopU8(u8, N);
  const u8Ms = performance.now() - t;
  t = performance.now();
  loopI32(i32, N);
  const i32Ms = performance.now() - t;
  const label = shared ? "shared  " : "unshared";
  console.log(`${label} u8 ${(N / u8Ms / 1e3).toFixed(0)} M/s   i32 ${(N / i32Ms / 1e3).toFixed(0)} M/s`);
}
