#!/usr/bin/env node
// Enforces the layer import direction of docs/ARCHITECTURE.md: a module may import only from
// its own layer or from layers listed before it. Relative imports are resolved; bare package
// imports are allowed everywhere except in the processor, which must stay a pure engine.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const root = resolve(dirname(new URL(import.meta.url).pathname), "..");
const LAYERS = [
  ["processor", ["src/x86"]],
  ["machine", ["src/machine"]],
  ["hypervisor", ["src/xen"]],
  ["domain0", ["src/dom0"]],
  ["interfaces", ["src/api", "src/cli", "web"]],
];
const PURE_LAYERS = new Set(["processor"]);

function layerOf(file) {
  const rel = relative(root, file);
  for (let i = 0; i < LAYERS.length; i++) {
    for (const dir of LAYERS[i][1]) if (rel === dir || rel.startsWith(`${dir}/`)) return i;
  }
  return -1;
}

function* walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* walk(p);
    else if (/\.(ts|mts|js|mjs)$/.test(name)) yield p;
  }
}

const importRe =
  /(?:^|\s)(?:import|export)\s[^'"]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;
const problems = [];
for (const file of walk(join(root, "src"))) {
  const from = layerOf(file);
  if (from < 0) continue;
  const text = readFileSync(file, "utf8");
  for (const m of text.matchAll(importRe)) {
    const spec = m[1] ?? m[2];
    if (spec.startsWith(".")) {
      const to = layerOf(resolve(dirname(file), spec));
      if (to > from) {
        problems.push(
          `${relative(root, file)}: imports ${spec} (layer ${LAYERS[to][0]} is below ${LAYERS[from][0]})`,
        );
      }
    } else if (
      PURE_LAYERS.has(LAYERS[from][0]) &&
      !file.endsWith(".test.ts") &&
      !spec.startsWith("node:test")
    ) {
      problems.push(`${relative(root, file)}: the processor layer must not import ${spec}`);
    }
  }
}
if (problems.length) {
  console.error(`layer check: ${problems.length} forbidden import(s)`);
  for (const p of problems) console.error(`  ${p}`);
  process.exit(1);
}
console.log("layer check: ok");
