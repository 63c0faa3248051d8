import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { hostname } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { Level } from 'level'
import type { AbstractSublevel } from 'abstract-level'
import { base32 } from 'multiformats/bases/base32'
import { CID } from '../codec/cid.js'
import type { Block } from '../codec/block.js'
import { InvalidInputError, NotFoundError, StoreError, StoreLockedError } from '../errors.js'
import { Mutex } from '../util/mutex.js'
import type { Blockstore, BlockstoreSupports } from './blockstore.js'
import type { ConfigCells, RefCells, RefLogRecord } from './ref-cells.js'
import type { Store } from './store.js'

type Sub<V> = AbstractSublevel<Level<string, unknown>, string | Uint8Array, string, V>

const key = (cid: CID): string => cid.toString(base32)

/**
 * Keys from `prefix` on; callers stop at the first key that does not start with it. An upper
 * bound of `prefix + '\xff'` would miss names with characters above U+00FF (UTF-8 keys sort
 * by bytes, and 'ÿ' encodes as c3 bf), such as `models/中`.
 */
const prefixRange = (prefix: string): { gte?: string } => (prefix ? { gte: prefix } : {})
const HOLDER_FILE = 'holder.json'

export interface LevelStoreOptions {
  /** How long to wait for another process to release the store, in ms (default 10 s). */
  lockTimeoutMs?: number
  /** Called once when the store is busy and we start waiting (the CLI prints it). */
  onWait?: (message: string) => void
  /** Written beside the database so a waiting process can say who holds it. */
  holder?: string
}

/** The directory inside a `.pedigree` folder that holds the LevelDB files. */
export const levelDir = (root: string): string => join(root, 'store')

class LevelBlockstore implements Blockstore {
  readonly supports: BlockstoreSupports = { delete: false, prefixScan: true }
  constructor(private readonly db: Sub<Uint8Array>) {}

  async get(cid: CID): Promise<Uint8Array> {
    const bytes = await this.tryGet(cid)
    if (!bytes) throw new NotFoundError('block', key(cid))
    return bytes
  }
  async tryGet(cid: CID): Promise<Uint8Array | undefined> {
    return (await this.db.get(key(cid))) ?? undefined
  }
  async getMany(cids: readonly CID[]): Promise<(Uint8Array | undefined)[]> {
    return (await this.db.getMany(cids.map(key))) as (Uint8Array | undefined)[]
  }
  async has(cid: CID): Promise<boolean> {
    return this.db.has(key(cid))
  }
  async hasMany(cids: readonly CID[]): Promise<boolean[]> {
    return this.db.hasMany(cids.map(key))
  }
  async put(block: Block): Promise<void> {
    await this.db.put(key(block.cid), block.bytes)
  }
  async putMany(blocks: readonly Block[]): Promise<void> {
    if (blocks.length === 0) return
    await this.db.batch(blocks.map((b) => ({ type: 'put' as const, key: key(b.cid), value: b.bytes })))
  }
  async *cids({ prefix = '' }: { prefix?: string } = {}): AsyncIterable<CID> {
    for await (const k of this.db.keys(prefixRange(prefix))) {
      if (!(k as string).startsWith(prefix)) break
      yield CID.parse(k as string)
    }
  }
}

const logKey = (name: string, seq: number): string => `${name}\x00${String(seq).padStart(12, '0')}`

class LevelRefCells implements RefCells {
  private readonly mutex = new Mutex()
  constructor(
    private readonly root: Level<string, unknown>,
    private readonly values: Sub<string>,
    private readonly logs: Sub<RefLogRecord>,
  ) {}

  async get(name: string): Promise<string | undefined> {
    return (await this.values.get(name)) ?? undefined
  }
  async *list(prefix = ''): AsyncIterable<[string, string]> {
    for await (const [k, v] of this.values.iterator(prefixRange(prefix))) {
      if (!(k as string).startsWith(prefix)) break
      yield [k as string, v as string]
    }
  }
  async compareAndSwap(name: string, record: RefLogRecord): Promise<boolean> {
    return this.mutex.run(async () => {
      const current = (await this.values.get(name)) ?? null
      if (current !== record.old) return false
      let seq = 0
      for await (const k of this.logs.keys({ gte: `${name}\x00`, lt: `${name}\x01`, reverse: true, limit: 1 })) {
        seq = Number((k as string).slice(name.length + 1)) + 1
      }
      // The ref and its log line land in one atomic LevelDB batch: a crash keeps both or neither.
      await this.root.batch([
        record.new === null
          ? { type: 'del', sublevel: this.values, key: name }
          : { type: 'put', sublevel: this.values, key: name, value: record.new },
        { type: 'put', sublevel: this.logs, key: logKey(name, seq), value: record },
      ] as never)
      return true
    })
  }
  async *log(name: string): AsyncIterable<RefLogRecord> {
    for await (const v of this.logs.values({ gte: `${name}\x00`, lt: `${name}\x01` })) yield v as RefLogRecord
  }
  async *logged(): AsyncIterable<string> {
    let last: string | undefined
    for await (const k of this.logs.keys()) {
      const name = (k as string).slice(0, (k as string).indexOf('\x00'))
      if (name !== last) yield name
      last = name
    }
  }
}

class LevelConfigCells implements ConfigCells {
  // Values are JSON text in a utf8 sublevel (the same bytes level's 'json' encoding writes),
  // because abstract-level refuses a null value and null is a JSON value like any other.
  constructor(private readonly db: Sub<string>) {}
  async get<T>(k: string): Promise<T | undefined> {
    const text = await this.db.get(k)
    return text === undefined ? undefined : (JSON.parse(text) as T)
  }
  async set(k: string, value: unknown): Promise<void> {
    const text = JSON.stringify(value) as string | undefined
    if (text === undefined) throw new InvalidInputError(`config value for '${k}' is not JSON (got ${typeof value})`, { key: k })
    await this.db.put(k, text)
  }
  async delete(k: string): Promise<void> {
    await this.db.del(k)
  }
  async *entries(prefix = ''): AsyncIterable<[string, unknown]> {
    for await (const [k, v] of this.db.iterator(prefixRange(prefix))) {
      if (!(k as string).startsWith(prefix)) break
      yield [k as string, JSON.parse(v as string)]
    }
  }
}

function isLocked(e: unknown): boolean {
  const err = e as { code?: string; cause?: { code?: string } }
  return err?.code === 'LEVEL_LOCKED' || err?.cause?.code === 'LEVEL_LOCKED'
}

/**
 * Open (creating if needed) the LevelDB store under `root` (a `.pedigree` directory).
 * LevelDB admits one process at a time: if another holds it, wait up to `lockTimeoutMs`
 * and then throw StoreLockedError naming the store and, when known, the holder.
 */
export async function openLevelStore(root: string, options: LevelStoreOptions = {}): Promise<Store> {
  const { lockTimeoutMs = 10_000, onWait, holder } = options
  await mkdir(root, { recursive: true })
  const started = Date.now()
  let announced = false
  let db: Level<string, unknown>
  for (;;) {
    db = new Level<string, unknown>(levelDir(root), { keyEncoding: 'utf8', valueEncoding: 'json' })
    try {
      await db.open()
      break
    } catch (e) {
      if (!isLocked(e)) throw new StoreError(`cannot open the store at ${root}: ${(e as Error).message}`, { location: root }, { cause: e })
      const held = await readHolder(root)
      if (Date.now() - started >= lockTimeoutMs) throw new StoreLockedError(root, Date.now() - started, held)
      if (!announced && onWait) onWait(`waiting for the store at ${root}, held by ${held ?? 'another process'}…`)
      announced = true
      await sleep(50 + Math.random() * 100)
    }
  }
  const holderPath = join(root, HOLDER_FILE)
  await writeFile(holderPath, JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString(), what: holder ?? 'pedigree' }))
  const blocks = db.sublevel<string, Uint8Array>('b', { valueEncoding: 'view' })
  const values = db.sublevel<string, string>('r', { valueEncoding: 'utf8' })
  const logs = db.sublevel<string, RefLogRecord>('l', { valueEncoding: 'json' })
  const config = db.sublevel<string, string>('c', { valueEncoding: 'utf8' })
  return {
    location: root,
    blocks: new LevelBlockstore(blocks),
    refs: new LevelRefCells(db, values, logs),
    config: new LevelConfigCells(config),
    async close() {
      await rm(holderPath, { force: true })
      await db.close()
    },
  }
}

async function readHolder(root: string): Promise<string | undefined> {
  try {
    const h = JSON.parse(await readFile(join(root, HOLDER_FILE), 'utf8')) as { pid: number; host: string; since: string; what: string }
    return `${h.what}, pid ${h.pid} on ${h.host} since ${h.since}`
  } catch {
    return undefined
  }
}
