// An in-memory xenstore tree (xenstored's data, toolstack-and-ecosystem.md §1.9–1.10).
//
// Paths are absolute ("/local/domain/1/name"); a node has a value (possibly empty) and
// children. Writing a node creates its missing parents with empty values, as xenstored does.
//
// Permissions (minimal for now): every node records an owner domid; a domain may read and
// write anything under its own home (/local/domain/<id>) and read everything else; dom0
// (id 0) may do anything. No per-node ACL lists, no quotas. Transactions are not isolated:
// operations inside one apply immediately and TRANSACTION_END always succeeds.
//
// Watches: (domid, path, token) triples; a write or removal at or below `path` fires an
// event to the watcher (the listener decides how to deliver it).

export interface XsNode {
  value: string;
  owner: number;
  children: Map<string, XsNode>;
}

export type WatchListener = (path: string, token: string) => void;

interface Watch {
  conn: object;
  path: string;
  token: string;
  fire: WatchListener;
}

export class XenStore {
  readonly root: XsNode = { value: "", owner: 0, children: new Map() };
  private readonly watches: Watch[] = [];

  static split(path: string): string[] | undefined {
    if (!path.startsWith("/")) return undefined;
    if (path === "/") return [];
    const parts = path.slice(1).split("/");
    if (parts.some((p) => p === "" || !/^[A-Za-z0-9\-/_@]+$/.test(p))) return undefined;
    return parts;
  }

  static valid(path: string): boolean {
    return path.length <= 3072 && XenStore.split(path) !== undefined;
  }

  lookup(path: string): XsNode | undefined {
    const parts = XenStore.split(path);
    if (!parts) return undefined;
    let n: XsNode | undefined = this.root;
    for (const p of parts) {
      n = n.children.get(p);
      if (!n) return undefined;
    }
    return n;
  }

  read(path: string): string | undefined {
    return this.lookup(path)?.value;
  }

  /** Writes (creating parents); returns false for an invalid path. */
  write(path: string, value: string, owner = 0): boolean {
    const parts = XenStore.split(path);
    if (!parts) return false;
    let n = this.root;
    for (const p of parts) {
      let c = n.children.get(p);
      if (!c) {
        c = { value: "", owner, children: new Map() };
        n.children.set(p, c);
      }
      n = c;
    }
    n.value = value;
    this.fire(path);
    return true;
  }

  mkdir(path: string, owner = 0): boolean {
    if (this.lookup(path)) return true;
    return this.write(path, "", owner);
  }

  rm(path: string): boolean {
    const parts = XenStore.split(path);
    if (!parts || parts.length === 0) return false;
    let n: XsNode | undefined = this.root;
    for (const p of parts.slice(0, -1)) {
      n = n.children.get(p);
      if (!n) return false;
    }
    if (!n.children.delete(parts[parts.length - 1])) return false;
    this.fire(path);
    return true;
  }

  directory(path: string): string[] | undefined {
    const n = this.lookup(path);
    return n ? [...n.children.keys()] : undefined;
  }

  /** May `domid` write at `path`? (see the header: minimal permissions) */
  canWrite(domid: number, path: string): boolean {
    if (domid === 0) return true;
    const home = `/local/domain/${domid}`;
    return path === home || path.startsWith(`${home}/`);
  }

  watch(conn: object, path: string, token: string, fire: WatchListener): void {
    this.watches.push({ conn, path, token, fire });
  }

  unwatch(conn: object, path: string, token: string): boolean {
    const i = this.watches.findIndex((w) => w.conn === conn && w.path === path && w.token === token);
    if (i < 0) return false;
    this.watches.splice(i, 1);
    return true;
  }

  unwatchAll(conn: object): void {
    for (let i = this.watches.length - 1; i >= 0; i--) if (this.watches[i].conn === conn) this.watches.splice(i, 1);
  }

  private fire(path: string): void {
    for (const w of [...this.watches]) {
      if (path === w.path || path.startsWith(w.path.endsWith("/") ? w.path : `${w.path}/`)) w.fire(path, w.token);
    }
  }

  /** The nodes a new domain gets (what xl/libxl writes before unpausing it). */
  introduceDomain(domid: number, info: {
    name: string;
    memoryKiB: number;
    storeMfn?: number;
    storePort?: number;
    consoleMfn?: number;
    consolePort?: number;
    vcpus?: number;
  }): void {
    const home = `/local/domain/${domid}`;
    this.write(home, "", domid);
    this.write(`${home}/name`, info.name, domid);
    this.write(`${home}/domid`, String(domid), domid);
    this.write(`${home}/control/shutdown`, "", domid);
    this.write(`${home}/memory/target`, String(info.memoryKiB), domid);
    this.write(`${home}/memory/static-max`, String(info.memoryKiB), domid);
    if (info.storeMfn !== undefined) this.write(`${home}/store/ring-ref`, String(info.storeMfn), domid);
    if (info.storePort !== undefined) this.write(`${home}/store/port`, String(info.storePort), domid);
    if (info.consoleMfn !== undefined) this.write(`${home}/console/ring-ref`, String(info.consoleMfn), domid);
    if (info.consolePort !== undefined) this.write(`${home}/console/port`, String(info.consolePort), domid);
    this.write(`${home}/console/type`, "xenconsoled", domid);
    this.write(`${home}/device`, "", domid);
    this.write(`${home}/data`, "", domid);
    for (let i = 0; i < (info.vcpus ?? 1); i++) this.write(`${home}/cpu/${i}/availability`, "online", domid);
    this.write(`/vm/${domid}/name`, info.name, 0);
    this.write(`${home}/vm`, `/vm/${domid}`, domid);
  }

  /** Removes what introduceDomain wrote (the toolstack, after destroying the domain). */
  releaseDomain(domid: number): void {
    this.rm(`/local/domain/${domid}`);
    this.rm(`/vm/${domid}`);
  }
}
