// Same-process A/B of two checkouts of tsxen on the bench workloads:
//
//   node --import tsx bench/ab.ts DIR_A DIR_B [workloads] [rounds] [scale]
//   (defaults: r32,m32,c32  6  0.5; JIT=1 in the environment for the block compiler on)
//
// Loads bench/run.ts from both checkouts (two independent copies of the emulator in one
// process), then runs each workload alternately on A and B, `rounds` times each (the order
// flipped every round), and prints per workload the median and best CPU MIPS of each and the
// median of the per-round ratios B/A. Why: these machines are shared, and their speed drifts by
// a factor of two over minutes; runs of the two checkouts interleaved a second apart see the
// same machine, so the ratio is what to trust (two runs of one checkout: 0.98-1.03).
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [dirA, dirB, names = "r32,m32,c32", roundsArg = "6", scaleArg = "0.5"] = process.argv.slice(2);
if (!dirA || !dirB) {
  console.error("usage: node --import tsx bench/ab.ts DIR_A DIR_B [workloads] [rounds] [scale]");
  process.exit(2);
}
type Bench = typeof import("./run.ts");
const load = async (dir: string): Promise<Bench> => import(pathToFileURL(resolve(dir, "bench/run.ts")).href);
const A = await load(dirA);
const B = await load(dirB);
const interpreterOnly = process.env.JIT !== "1";
const rounds = Number(roundsArg);
const scale = Number(scaleArg);
const mips: Record<string, number[]> = {};
for (let round = 0; round < rounds; round++) {
  for (const name of names.split(",")) {
    const order: [string, Bench][] = round % 2 === 0 ? [["A", A], ["B", B]] : [["B", B], ["A", A]];
    for (const [tag, bench] of order) {
      const r = await bench.runWorkload(bench.workload(name), scale, interpreterOnly);
      mips[`${name} ${tag}`] ??= [];
      mips[`${name} ${tag}`].push(r.cpuMips);
    }
  }
}
const median = (v: number[]) => [...v].sort((x, y) => x - y)[v.length >> 1];
console.log(`A = ${dirA}, B = ${dirB}; ${interpreterOnly ? "interpreter alone" : "block compiler on"}; CPU MIPS over ${rounds} rounds`);
for (const name of names.split(",")) {
  const a = mips[`${name} A`];
  const b = mips[`${name} B`];
  const ratio = median(a.map((x, k) => b[k] / x));
  console.log(
    `${name.padEnd(5)} A median ${median(a).toFixed(0).padStart(5)} best ${Math.max(...a).toFixed(0).padStart(5)}   B median ${median(b).toFixed(0).padStart(5)} best ${Math.max(...b).toFixed(0).padStart(5)}   B/A ${ratio.toFixed(2)}`,
  );
}
