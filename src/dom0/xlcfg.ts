// xl.cfg files: the parser (the grammar of Xen's libxlu, toolstack reference §1.6) and the
// validator for the keys a PV domain of tsxen takes.
//
// Grammar, as libxlu's lexer and parser accept it:
//   file     = { setting } ; settings end at a newline or ';'
//   setting  = KEY ( "=" | "+=" ) value
//   KEY      = [a-z][._0-9a-z]*
//   value    = string | number | list
//   string   = '...' or "..." on one line, with C escapes (\n \t \\ \' \" \xHH \ooo ...)
//   number   = [0-9][0-9a-fx]*  : decimal, 0-prefixed octal, 0x hex (booleans are numbers)
//   list     = "[" [ value { "," value } [ "," ] ] "]"  (newlines allowed inside; nested,
//              mixed types)
//   comment  = "#" to the end of the line
// `+=` appends to a list or a string set before (and acts as `=` when there is none). A later
// setting of a key replaces an earlier one. `+ - . ( ) :` outside strings are refused with
// xl's hint that the file is probably a Python (xm) config.
// Where we differ from libxlu, on purpose: a backslash right before a newline continues the
// line (an addition); an unknown escape such as \q is an error (libxlu drops it silently); \ooo
// is octal as in C (libxlu reads those digits as decimal, a slip in its lexer).
//
// Every error is one line: "FILE:LINE:COLUMN: problem".

export interface SourcePos {
  file: string;
  line: number;
  column: number;
}

export type XlValue =
  | { kind: "string"; value: string; pos: SourcePos }
  | { kind: "number"; value: number; text: string; pos: SourcePos }
  | { kind: "list"; items: XlValue[]; pos: SourcePos };

export interface XlSetting {
  key: string;
  value: XlValue;
  /** Where the key was written. */
  pos: SourcePos;
}

export interface XlConfig {
  file: string;
  /** The effective settings, in the order their keys first appeared. */
  settings: Map<string, XlSetting>;
  warnings: string[];
}

const where = (p: SourcePos): string => `${p.file}:${p.line}:${p.column}`;

export class XlConfigError extends Error {
  constructor(
    readonly pos: SourcePos,
    readonly problem: string,
  ) {
    super(`${where(pos)}: ${problem}`);
    this.name = "XlConfigError";
  }
}

type Token =
  | { t: "key"; text: string; pos: SourcePos }
  | { t: "string"; value: string; pos: SourcePos }
  | { t: "number"; text: string; pos: SourcePos }
  | { t: "="; pos: SourcePos }
  | { t: "+="; pos: SourcePos }
  | { t: "["; pos: SourcePos }
  | { t: "]"; pos: SourcePos }
  | { t: ","; pos: SourcePos }
  | { t: "end"; pos: SourcePos; semicolon: boolean } // newline or ';'
  | { t: "eof"; pos: SourcePos };

const SIMPLE_ESCAPES: Record<string, string> = {
  a: "\x07",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
  v: "\v",
  "\\": "\\",
  "'": "'",
  '"': '"',
};

function tokenize(text: string, file: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const pos = (at = i): SourcePos => ({ file, line, column: at - lineStart + 1 });
  const fail = (problem: string, at = i): never => {
    throw new XlConfigError(pos(at), problem);
  };
  while (i < text.length) {
    const c = text[i];
    if (c === "\n") {
      tokens.push({ t: "end", pos: pos(), semicolon: false });
      i++;
      line++;
      lineStart = i;
    } else if (c === " " || c === "\t" || c === "\r") {
      i++;
    } else if (c === "\\" && (text[i + 1] === "\n" || (text[i + 1] === "\r" && text[i + 2] === "\n"))) {
      i += text[i + 1] === "\n" ? 2 : 3; // continuation: the newline is not an end of setting
      line++;
      lineStart = i;
    } else if (c === "#") {
      while (i < text.length && text[i] !== "\n") i++;
    } else if (c === ";") {
      tokens.push({ t: "end", pos: pos(), semicolon: true });
      i++;
    } else if (c === "=" || c === "[" || c === "]" || c === ",") {
      tokens.push({ t: c, pos: pos() });
      i++;
    } else if (c === "+" && text[i + 1] === "=") {
      tokens.push({ t: "+=", pos: pos() });
      i += 2;
    } else if (/[a-z]/.test(c)) {
      const start = i;
      while (i < text.length && /[._0-9a-z]/.test(text[i])) i++;
      tokens.push({ t: "key", text: text.slice(start, i), pos: pos(start) });
    } else if (/[0-9]/.test(c)) {
      const start = i;
      while (i < text.length && /[0-9a-fx]/.test(text[i])) i++;
      tokens.push({ t: "number", text: text.slice(start, i), pos: pos(start) });
    } else if (c === '"' || c === "'") {
      const start = i;
      let value = "";
      i++;
      for (;;) {
        if (i >= text.length || text[i] === "\n") fail("string is not closed on its line", start);
        const d = text[i];
        if (d === c) {
          i++;
          break;
        }
        if (d !== "\\") {
          value += d;
          i++;
          continue;
        }
        const e = text[i + 1];
        if (e === undefined || e === "\n") fail("string is not closed on its line", start);
        if (e in SIMPLE_ESCAPES) {
          value += SIMPLE_ESCAPES[e];
          i += 2;
        } else if (e === "x") {
          const m = /^[0-9a-fA-F]{2}/.exec(text.slice(i + 2, i + 4));
          if (!m) fail("\\x escape needs two hex digits");
          value += String.fromCharCode(Number.parseInt(m![0], 16));
          i += 2 + m![0].length;
        } else if (/[0-7]/.test(e)) {
          const m = /^[0-7]{1,3}/.exec(text.slice(i + 1, i + 4))!;
          const code = Number.parseInt(m[0], 8);
          if (code > 255) fail(`octal escape \\${m[0]} is above \\377`);
          value += String.fromCharCode(code);
          i += 1 + m[0].length;
        } else {
          fail(`unknown escape \\${e} in string`);
        }
      }
      tokens.push({ t: "string", value, pos: pos(start) });
    } else if ("+-.():".includes(c)) {
      fail(`unexpected '${c}' (is this a Python (xm) config? xl.cfg is not Python)`);
    } else if (/[A-Z]/.test(c)) {
      fail(`unexpected '${c}': keys are lower case`);
    } else {
      fail(`unexpected character ${JSON.stringify(c)}`);
    }
  }
  tokens.push({ t: "eof", pos: pos() });
  return tokens;
}

/** The value of an xl number token: decimal, 0-prefixed octal or 0x hex. */
function numberValue(text: string, p: SourcePos): number {
  let value: number;
  if (/^0x[0-9a-f]+$/.test(text)) value = Number.parseInt(text.slice(2), 16);
  else if (/^0[0-7]*$/.test(text)) value = Number.parseInt(text, 8);
  else if (/^[1-9][0-9]*$/.test(text)) value = Number.parseInt(text, 10);
  else throw new XlConfigError(p, `"${text}" is not a number (decimal, 0-prefixed octal or 0x hex)`);
  if (!Number.isSafeInteger(value)) throw new XlConfigError(p, `number ${text} is too large`);
  return value;
}

/** Parses xl.cfg text. `overrides` are "KEY=VALUE" strings, as after the file on xl's command line. */
export function parseXlConfig(text: string, file: string, overrides: string[] = []): XlConfig {
  const config: XlConfig = { file, settings: new Map(), warnings: [] };
  parseInto(config, text, file);
  overrides.forEach((o, n) => {
    parseInto(config, o, `${file} (command-line setting ${n + 1})`);
  });
  return config;
}

function parseInto(config: XlConfig, text: string, file: string): void {
  const tokens = tokenize(text, file);
  let k = 0;
  const peek = () => tokens[k];
  const fail = (tok: Token, problem: string): never => {
    throw new XlConfigError(tok.pos, problem);
  };
  const describe = (tok: Token): string =>
    tok.t === "end"
      ? tok.semicolon
        ? "';'"
        : "end of line"
      : tok.t === "eof"
        ? "end of file"
        : tok.t === "key"
          ? `'${tok.text}'`
          : `'${tok.t}'`;

  const parseValue = (inList: boolean): XlValue => {
    const tok = tokens[k];
    if (tok.t === "string") {
      k++;
      return { kind: "string", value: tok.value, pos: tok.pos };
    }
    if (tok.t === "number") {
      k++;
      return { kind: "number", value: numberValue(tok.text, tok.pos), text: tok.text, pos: tok.pos };
    }
    if (tok.t === "[") {
      k++;
      const items: XlValue[] = [];
      const skipNewlines = () => {
        for (let t = tokens[k]; t.t === "end"; t = tokens[++k]) {
          // Only newlines may stand inside a list; a ';' ends a setting.
          if (t.semicolon) fail(t, "';' inside a list");
        }
      };
      for (;;) {
        skipNewlines();
        if (tokens[k].t === "]") {
          k++;
          break;
        }
        items.push(parseValue(true));
        skipNewlines();
        const sep = tokens[k];
        if (sep.t === ",") {
          k++;
          continue;
        }
        if (sep.t === "]") {
          k++;
          break;
        }
        fail(sep, `expected ',' or ']' in the list opened at line ${tok.pos.line}, found ${describe(sep)}`);
      }
      return { kind: "list", items, pos: tok.pos };
    }
    return fail(
      tok,
      `expected a value${inList ? " in the list" : ""} (a string, number or list), found ${describe(tok)}`,
    );
  };

  for (;;) {
    const tok = peek();
    if (tok.t === "eof") break;
    if (tok.t === "end") {
      k++;
      continue;
    }
    if (tok.t !== "key") fail(tok, `expected a setting (KEY = VALUE), found ${describe(tok)}`);
    const key = (tok as { text: string }).text;
    k++;
    const op = tokens[k];
    if (op.t !== "=" && op.t !== "+=") fail(op, `expected '=' after '${key}', found ${describe(op)}`);
    k++;
    const value = parseValue(false);
    const after = tokens[k];
    if (after.t !== "end" && after.t !== "eof")
      fail(after, `expected the end of the setting of '${key}', found ${describe(after)}`);
    store(config, { key, value, pos: tok.pos }, op.t === "+=");
  }
}

function store(config: XlConfig, setting: XlSetting, append: boolean): void {
  const old = config.settings.get(setting.key);
  if (!old) {
    config.settings.set(setting.key, setting);
    return;
  }
  if (!append) {
    config.warnings.push(
      `${where(setting.pos)}: '${setting.key}' set again (first at line ${old.pos.line}); the later value wins`,
    );
    config.settings.set(setting.key, setting);
    return;
  }
  const a = old.value;
  const b = setting.value;
  if (a.kind === "list" && b.kind === "list") {
    config.settings.set(setting.key, { ...old, value: { ...a, items: [...a.items, ...b.items] } });
  } else if (a.kind === "string" && b.kind === "string") {
    config.settings.set(setting.key, { ...old, value: { ...a, value: a.value + b.value } });
  } else {
    throw new XlConfigError(
      setting.pos,
      `'+=' cannot add a ${b.kind} to the ${a.kind} '${setting.key}' (line ${old.pos.line})`,
    );
  }
}

// ---- validation -------------------------------------------------------------------------------

export const XL_ACTIONS = [
  "destroy",
  "restart",
  "rename-restart",
  "preserve",
  "coredump-destroy",
  "coredump-restart",
  "soft-reset",
] as const;
export type XlAction = (typeof XL_ACTIONS)[number];

export interface PvDomainConfig {
  name: string;
  type: "pv";
  /** MiB. */
  memory: number;
  /** MiB; at least `memory`. */
  maxmem: number;
  vcpus: number;
  /** As written in the file (relative paths are the caller's to resolve). */
  kernel: string;
  ramdisk?: string;
  /** The kernel command line: `cmdline`, else built from `root` and `extra` as xl does. */
  cmdline: string;
  onPoweroff: XlAction;
  onReboot: XlAction;
  onCrash: XlAction;
  onWatchdog: XlAction;
  warnings: string[];
}

/** Keys of xl.cfg(5) that tsxen recognises but does not take yet (a clearer error than "unknown"). */
const XL_KEYS_NOT_YET = new Set([
  "builder",
  "maxvcpus",
  "cpus",
  "cpus_soft",
  "cpu_weight",
  "cap",
  "pool",
  "bootloader",
  "bootloader_args",
  "firmware",
  "uuid",
  "seclabel",
  "nomigrate",
  "driver_domain",
  "disk",
  "vif",
  "vfb",
  "vnc",
  "vnclisten",
  "vncdisplay",
  "vncunused",
  "vncpasswd",
  "sdl",
  "keymap",
  "serial",
  "channel",
  "p9",
  "boot",
  "acpi",
  "vga",
  "videoram",
  "xen_platform_pci",
  "timer_mode",
  "pci",
  "usbctrl",
  "usbdev",
  "vtpm",
  "on_soft_reset",
  "device_model_version",
  "localtime",
  "rtc_timeoffset",
]);

export const PV_CONFIG_KEYS = [
  "name",
  "type",
  "memory",
  "maxmem",
  "vcpus",
  "kernel",
  "ramdisk",
  "cmdline",
  "extra",
  "root",
  "on_poweroff",
  "on_reboot",
  "on_crash",
  "on_watchdog",
] as const;

/** A PV domain's vCPUs: the 32 vcpu_info slots of shared_info (XEN_LEGACY_MAX_VCPUS). */
const MAX_VCPUS = 32;
/** Largest memory= we take (MiB): machine memory is at most 3 GiB. */
const MAX_MEMORY_MIB = 3072;

/** Checks the settings for a PV domain and returns them typed; the first problem is an Error. */
export function validatePvConfig(config: XlConfig): PvDomainConfig {
  const s = config.settings;
  const fileStart: SourcePos = { file: config.file, line: 1, column: 1 };
  for (const [key, setting] of s) {
    if ((PV_CONFIG_KEYS as readonly string[]).includes(key)) continue;
    if (XL_KEYS_NOT_YET.has(key))
      throw new XlConfigError(setting.pos, `'${key}' is an xl key that tsxen does not support yet`);
    throw new XlConfigError(
      setting.pos,
      `unknown key '${key}' (PV domains take: ${PV_CONFIG_KEYS.join(", ")})`,
    );
  }
  const str = (key: string): string | undefined => {
    const v = s.get(key)?.value;
    if (v === undefined) return undefined;
    if (v.kind !== "string") throw new XlConfigError(v.pos, `'${key}' must be a string, not a ${v.kind}`);
    return v.value;
  };
  const int = (key: string, min: number, max: number, unit = ""): number | undefined => {
    const v = s.get(key)?.value;
    if (v === undefined) return undefined;
    if (v.kind !== "number") throw new XlConfigError(v.pos, `'${key}' must be a number, not a ${v.kind}`);
    if (v.value < min || v.value > max) {
      throw new XlConfigError(
        v.pos,
        `'${key}' is ${v.value}${unit}; it must be between ${min} and ${max}${unit}`,
      );
    }
    return v.value;
  };
  const action = (key: string, fallback: XlAction): XlAction => {
    const v = str(key);
    if (v === undefined) return fallback;
    if (!(XL_ACTIONS as readonly string[]).includes(v)) {
      throw new XlConfigError(
        s.get(key)!.value.pos,
        `'${key}' is "${v}"; xl's actions are ${XL_ACTIONS.join(", ")}`,
      );
    }
    return v as XlAction;
  };

  const name = str("name");
  if (name === undefined) throw new XlConfigError(fileStart, "'name' is missing (every domain needs a name)");
  const namePos = s.get("name")!.value.pos;
  if (name === "") throw new XlConfigError(namePos, "'name' is empty");
  if (/^[0-9]+$/.test(name))
    throw new XlConfigError(namePos, `'name' "${name}" is all digits (it would read as a domain id)`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/[\x00-\x1f\x7f/]/.test(name))
    throw new XlConfigError(namePos, `'name' "${name}" contains '/' or a control character`);

  const type = str("type") ?? "pv";
  if (type !== "pv") {
    const p = s.get("type")!.value.pos;
    if (type === "pvh" || type === "hvm")
      throw new XlConfigError(p, `'type' "${type}" is not supported yet (only "pv")`);
    throw new XlConfigError(p, `'type' is "${type}"; it must be "pv", "pvh" or "hvm"`);
  }

  const memory = int("memory", 1, MAX_MEMORY_MIB, " MiB");
  if (memory === undefined)
    throw new XlConfigError(fileStart, "'memory' is missing (MiB of RAM for the domain)");
  const maxmem = int("maxmem", 1, MAX_MEMORY_MIB, " MiB") ?? memory;
  if (maxmem < memory) {
    throw new XlConfigError(
      s.get("maxmem")!.value.pos,
      `'maxmem' (${maxmem} MiB) is below 'memory' (${memory} MiB)`,
    );
  }
  const vcpus = int("vcpus", 1, MAX_VCPUS) ?? 1;

  const kernel = str("kernel");
  if (kernel === undefined)
    throw new XlConfigError(fileStart, "'kernel' is missing (a PV domain boots a kernel image)");
  if (kernel === "") throw new XlConfigError(s.get("kernel")!.value.pos, "'kernel' is empty");
  const ramdisk = str("ramdisk");
  if (ramdisk === "") throw new XlConfigError(s.get("ramdisk")!.value.pos, "'ramdisk' is empty");

  const warnings = [...config.warnings];
  const explicit = str("cmdline");
  const root = str("root");
  const extra = str("extra");
  let cmdline: string;
  if (explicit !== undefined) {
    cmdline = explicit;
    if (root !== undefined || extra !== undefined) {
      warnings.push(`${where(s.get("cmdline")!.pos)}: 'cmdline' overrides 'root' and 'extra'`);
    }
  } else if (root !== undefined && extra !== undefined) {
    cmdline = `root=${root} ${extra}`;
  } else if (root !== undefined) {
    cmdline = `root=${root}`;
  } else {
    cmdline = extra ?? "";
  }

  return {
    name,
    type: "pv",
    memory,
    maxmem,
    vcpus,
    kernel,
    ramdisk,
    cmdline,
    onPoweroff: action("on_poweroff", "destroy"),
    onReboot: action("on_reboot", "restart"),
    onCrash: action("on_crash", "destroy"),
    onWatchdog: action("on_watchdog", "destroy"),
    warnings,
  };
}
