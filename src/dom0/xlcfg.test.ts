import assert from "node:assert/strict";
import { test } from "node:test";
import { parseXlConfig, validatePvConfig, XlConfigError } from "./xlcfg.ts";

const EXAMPLE = `# GNU Mach, 32-bit PAE
name   = "mach"
type   = 'pv'
memory = 128 ; maxmem = 0x100
vcpus  = 1
kernel = "/boot/gnumach-1.8-xen-486.gz"
cmdline = "root=device:hd0s1 \\"quoted\\" tab\\there"
on_crash = "preserve"
`;

test("settings parse into typed values with positions", () => {
  const cfg = parseXlConfig(EXAMPLE, "mach.cfg");
  const name = cfg.settings.get("name")!;
  assert.deepEqual(name.value, {
    kind: "string",
    value: "mach",
    pos: { file: "mach.cfg", line: 2, column: 10 },
  });
  assert.deepEqual(name.pos, { file: "mach.cfg", line: 2, column: 1 });
  assert.equal(cfg.settings.get("type")!.value.kind, "string");
  const maxmem = cfg.settings.get("maxmem")!.value;
  assert.deepEqual(maxmem, {
    kind: "number",
    value: 256,
    text: "0x100",
    pos: { file: "mach.cfg", line: 4, column: 25 },
  });
  const cmdline = cfg.settings.get("cmdline")!.value;
  assert.equal(cmdline.kind === "string" && cmdline.value, 'root=device:hd0s1 "quoted" tab\there');
  assert.deepEqual(
    [...cfg.settings.keys()],
    ["name", "type", "memory", "maxmem", "vcpus", "kernel", "cmdline", "on_crash"],
  );
});

test("numbers: decimal, octal, hex; lists nest, mix types, span lines and end with a comma", () => {
  const cfg = parseXlConfig(
    `a = 010
b = 0x1f
c = 0
d = [ "x", 1, [ 'y', ],
      # a comment inside a list
      2,
    ]
e = []
f.g_h = "dots and underscores in keys"
`,
    "t.cfg",
  );
  const v = (k: string) => cfg.settings.get(k)!.value;
  const num = (k: string) => {
    const x = v(k);
    return x.kind === "number" ? x.value : undefined;
  };
  assert.equal(num("a"), 8);
  assert.equal(num("b"), 31);
  assert.equal(num("c"), 0);
  const d = v("d");
  assert.ok(d.kind === "list");
  assert.equal(d.items.length, 4);
  assert.equal(d.items[3].kind === "number" && d.items[3].pos.line, 6);
  const inner = d.items[2];
  assert.ok(inner.kind === "list" && inner.items.length === 1 && inner.items[0].kind === "string");
  const e = v("e");
  assert.ok(e.kind === "list" && e.items.length === 0);
  assert.ok(cfg.settings.has("f.g_h"));
});

test("escapes: C's simple escapes, \\x and octal", () => {
  const cfg = parseXlConfig(String.raw`s = "a\nb\x41\101\\\'\0"`, "e.cfg");
  const s = cfg.settings.get("s")!.value;
  assert.equal(s.kind === "string" && s.value, "a\nbAA\\'\0");
});

test("+= appends to lists and strings; a repeated key replaces with a warning", () => {
  const cfg = parseXlConfig(`l = [1]\nl += [2, 3]\ns = "a"\ns += "b"\nn += 5\nm = 1\nm = 2\n`, "p.cfg");
  const l = cfg.settings.get("l")!.value;
  assert.ok(l.kind === "list");
  assert.deepEqual(
    l.items.map((x) => x.kind === "number" && x.value),
    [1, 2, 3],
  );
  const s = cfg.settings.get("s")!.value;
  assert.equal(s.kind === "string" && s.value, "ab");
  assert.equal(cfg.settings.get("n")!.value.kind, "number");
  const m = cfg.settings.get("m")!.value;
  assert.equal(m.kind === "number" && m.value, 2);
  assert.deepEqual(cfg.warnings, ["p.cfg:7:1: 'm' set again (first at line 6); the later value wins"]);
  assert.throws(
    () => parseXlConfig(`a = 1\na += "x"\n`, "p.cfg"),
    /p.cfg:2:1: '\+=' cannot add a string to the number 'a' \(line 1\)/,
  );
});

test("a backslash before a newline continues the line; command-line settings override", () => {
  const cfg = parseXlConfig(`cmdline = \\\n  "console=hvc0"\nmemory = 64\n`, "c.cfg", [
    "memory=256",
    'name="x"',
  ]);
  const c = cfg.settings.get("cmdline")!.value;
  assert.equal(c.kind === "string" && c.value, "console=hvc0");
  assert.equal(c.pos.line, 2);
  const m = cfg.settings.get("memory")!;
  assert.equal(m.value.kind === "number" && m.value.value, 256);
  assert.equal(m.pos.file, "c.cfg (command-line setting 1)");
});

test("syntax errors name the file, line, column and problem", () => {
  const cases: [string, RegExp][] = [
    [`name = "mach`, /^x.cfg:1:8: string is not closed on its line$/],
    [`name = "a\nb"`, /x.cfg:1:8: string is not closed on its line/],
    [`memory = 128 MB`, /x.cfg:1:14: unexpected 'M': keys are lower case/],
    [`memory = 128 mb`, /x.cfg:1:14: expected the end of the setting of 'memory', found 'mb'/],
    [
      `vif = ['bridge=xenbr0'] + []`,
      /x.cfg:1:25: unexpected '\+' \(is this a Python \(xm\) config\? xl.cfg is not Python\)/,
    ],
    [`disk = ("a", "b")`, /x.cfg:1:8: unexpected '\('.*Python/],
    [`memory = -1`, /x.cfg:1:10: unexpected '-'/],
    [`name "x"`, /x.cfg:1:6: expected '=' after 'name', found 'string'/],
    [`= 5`, /x.cfg:1:1: expected a setting \(KEY = VALUE\), found '='/],
    [`memory =\n128`, /x.cfg:1:9: expected a value \(a string, number or list\), found end of line/],
    [`l = [1 2]`, /x.cfg:1:8: expected ',' or ']' in the list opened at line 1, found 'number'/],
    [`l = [1, 2`, /x.cfg:1:10: expected ',' or ']' in the list opened at line 1, found end of file/],
    [`l = [1,`, /x.cfg:1:8: expected a value in the list \(a string, number or list\), found end of file/],
    [`l = [1; 2]`, /x.cfg:1:7: ';' inside a list/],
    [`n = 0x`, /x.cfg:1:5: "0x" is not a number/],
    [`n = 09`, /x.cfg:1:5: "09" is not a number/],
    [`n = 1f`, /x.cfg:1:5: "1f" is not a number/],
    [`s = "\\q"`, /x.cfg:1:6: unknown escape \\q in string/],
    [`s = "\\400"`, /x.cfg:1:6: octal escape \\400 is above \\377/],
    [`n = 99999999999999999999`, /number 99999999999999999999 is too large/],
    [`s = "\\x4"`, /x.cfg:1:6: \\x escape needs two hex digits/],
    [`name = "a" @`, /x.cfg:1:12: unexpected character "@"/],
  ];
  for (const [text, message] of cases) {
    assert.throws(
      () => parseXlConfig(text, "x.cfg"),
      (err: unknown) =>
        err instanceof XlConfigError && message.test(err.message) && !err.message.includes("\n"),
      `${JSON.stringify(text)} should fail with ${message}`,
    );
  }
});

test("a PV domain config validates into typed fields with xl's defaults", () => {
  const pv = validatePvConfig(parseXlConfig(EXAMPLE, "mach.cfg"));
  assert.deepEqual(pv, {
    name: "mach",
    type: "pv",
    memory: 128,
    maxmem: 256,
    vcpus: 1,
    kernel: "/boot/gnumach-1.8-xen-486.gz",
    ramdisk: undefined,
    cmdline: 'root=device:hd0s1 "quoted" tab\there',
    onPoweroff: "destroy",
    onReboot: "restart",
    onCrash: "preserve",
    onWatchdog: "destroy",
    warnings: [],
  });
});

test("cmdline comes from root and extra as xl builds it, and cmdline overrides them", () => {
  const base = `name="d"\nmemory=64\nkernel="k"\n`;
  const cmd = (extra: string) => validatePvConfig(parseXlConfig(base + extra, "d.cfg"));
  assert.equal(cmd(`root="/dev/xvda1"\nextra="console=hvc0"`).cmdline, "root=/dev/xvda1 console=hvc0");
  assert.equal(cmd(`root="/dev/xvda1"`).cmdline, "root=/dev/xvda1");
  assert.equal(cmd(`extra="single"`).cmdline, "single");
  assert.equal(cmd("").cmdline, "");
  const both = cmd(`cmdline="a"\nroot="b"`);
  assert.equal(both.cmdline, "a");
  assert.match(both.warnings[0], /d.cfg:4:1: 'cmdline' overrides 'root' and 'extra'/);
});

test("bad PV configs are refused with the file, line and problem", () => {
  const base = `name="d"\nmemory=64\nkernel="k"\n`;
  const cases: [string, RegExp][] = [
    [`memory=64\nkernel="k"`, /^v.cfg:1:1: 'name' is missing/],
    [`name="d"\nkernel="k"`, /v.cfg:1:1: 'memory' is missing/],
    [`name="d"\nmemory=64`, /v.cfg:1:1: 'kernel' is missing/],
    [`${base}disk=['x']`, /v.cfg:4:1: 'disk' is an xl key that tsxen does not support yet/],
    [`${base}colour="blue"`, /v.cfg:4:1: unknown key 'colour' \(PV domains take: name, type, memory/],
    [`${base}type="hvm"`, /v.cfg:4:6: 'type' "hvm" is not supported yet \(only "pv"\)/],
    [`${base}type="xen"`, /v.cfg:4:6: 'type' is "xen"; it must be "pv", "pvh" or "hvm"/],
    [`${base}memory="64"`, /v.cfg:4:8: 'memory' must be a number, not a string/],
    [`${base}memory=0`, /'memory' is 0 MiB; it must be between 1 and 3072 MiB/],
    [`${base}maxmem=32`, /v.cfg:4:8: 'maxmem' \(32 MiB\) is below 'memory' \(64 MiB\)/],
    [`${base}vcpus=0`, /'vcpus' is 0; it must be between 1 and 32/],
    [`${base}vcpus=33`, /'vcpus' is 33; it must be between 1 and 32/],
    [`${base}kernel=["k"]`, /v.cfg:4:8: 'kernel' must be a string, not a list/],
    [`${base}kernel=""`, /'kernel' is empty/],
    [
      `${base}on_crash="explode"`,
      /v.cfg:4:10: 'on_crash' is "explode"; xl's actions are destroy, restart, rename-restart/,
    ],
    [`${base}name="42"`, /'name' "42" is all digits/],
    [`${base}name="a/b"`, /contains '\/' or a control character/],
    [`${base}name=""`, /'name' is empty/],
  ];
  for (const [text, message] of cases) {
    assert.throws(
      () => validatePvConfig(parseXlConfig(text, "v.cfg")),
      (err: unknown) => err instanceof XlConfigError && message.test(err.message),
      `${JSON.stringify(text)} should fail with ${message}`,
    );
  }
  for (const a of [
    "destroy",
    "restart",
    "rename-restart",
    "preserve",
    "coredump-destroy",
    "coredump-restart",
    "soft-reset",
  ]) {
    assert.equal(validatePvConfig(parseXlConfig(`${base}on_poweroff="${a}"`, "v.cfg")).onPoweroff, a);
  }
});
