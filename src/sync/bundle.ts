import { createReadStream, createWriteStream } from 'node:fs'
import { rename, rm, stat } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { CarWriter } from '@ipld/car/writer'
import { CarBlockIterator } from '@ipld/car/iterator'
import { CarIndexedReader } from '@ipld/car/indexed-reader'
import { encodeNode, decodeBlockUnchecked, type Block } from '../codec/block.js'
import { CID, RAW, cidToString } from '../codec/cid.js'
import { NotFoundError, PedigreeError, RefusedError, StoreError } from '../errors.js'
import type { Person } from '../model/commit.js'
import { REMOTE_PREFIX, TAG_PREFIX, checkRefName } from '../refs/ref-name.js'
import { ensureIndexed } from '../repo/link-index.js'
import type { Repository } from '../repo/repository.js'
import type { BlockSizes, Blockstore } from '../store/blockstore.js'
import { isAncestor } from './ancestry.js'
import { checkComplete } from './complete.js'
import { CidSet, linksOfNode, verifyIncoming, type DagLink } from './dag.js'
import { IncompleteDagError } from './errors.js'
import { VerifiedWriter, refValues } from './receive.js'
import { checkRemoteName, trackingRef } from './remote.js'
import type { SyncProgress } from './transport.js'
import { trackTempFile } from '../util/temp-files.js'

/*
 * A bundle is a CARv1 file (https://ipld.io/specs/transport/car/carv1/) that any IPFS
 * implementation imports (`ipfs dag import`). Its roots are, in order:
 *   1. a dag-cbor "refs" block  {kind: "pedigree-refs", version: 1, refs: {<name>: <link>, …}}
 *      naming the refs the bundle carries (its links make it the root of everything in it);
 *   2. each distinct ref value (a commit, or an annotated tag node).
 * The refs block comes first in the file, then every block reachable from the refs (commits,
 * tree nodes, records, file nodes, chunks, and what records link to when the store has it),
 * each after the blocks it links to.
 */

export const REFS_KIND = 'pedigree-refs'

export interface BundleRef {
  name: string
  cid: CID
}

export interface CreateBundleResult {
  file: string
  /** The CAR's roots: the refs block, then the ref values. */
  roots: CID[]
  refs: BundleRef[]
  blocks: number
  /** Size of the file. */
  bytes: number
}

export interface VerifyBundleResult extends CreateBundleResult {
  /** Commits (and tag nodes) whose DAGs were checked. */
  commits: number
}

export interface ImportedRef {
  ref: string
  cid: CID
  /** `remotes/<remote>/<ref>`, always set to the bundle's value. */
  tracking: string
  /**
   * What happened to the local ref of the same name: `created`, `fast-forward`,
   * `up-to-date`, or `kept` (it has diverged from, or is a tag other than, the bundle's: it
   * was left alone; the bundle's value is in the tracking ref).
   */
  local: 'created' | 'fast-forward' | 'up-to-date' | 'kept'
}

export interface ImportBundleResult {
  file: string
  refs: ImportedRef[]
  /** Blocks read from the bundle and verified. */
  blocks: number
  bytes: number
}

/**
 * Write the refs named (default: every ref but `remotes/…`) and everything they reach into a
 * CARv1 file, streaming (memory stays bounded by the depth of the history, not its size).
 * The file appears under its name only once complete.
 *
 * @example
 * await createBundle(repo, 'campaign-7.car', { refs: ['main', 'tags/v7'] })
 */
export async function createBundle(repo: Repository, file: string, { refs: names = [], onProgress }: { refs?: string[]; onProgress?: (p: SyncProgress) => void } = {}): Promise<CreateBundleResult> {
  const refs: BundleRef[] = []
  if (names.length === 0) {
    for await (const r of repo.refs.list()) if (!r.name.startsWith(REMOTE_PREFIX)) refs.push({ name: r.name, cid: r.cid })
    if (refs.length === 0) throw new NotFoundError('ref', '(any)', 'the store has no refs to bundle')
  } else {
    for (const n of names) {
      checkRefName(n)
      if (n.startsWith(REMOTE_PREFIX)) throw new RefusedError(`refusing to bundle '${n}': remotes/… refs only record what another store had`, { ref: n })
      const name = (await repo.refs.get(n)) ? n : (await repo.refs.get(TAG_PREFIX + n)) ? TAG_PREFIX + n : n
      const cid = await repo.refs.resolve(name)
      if (!refs.some((r) => r.name === name)) refs.push({ name, cid })
    }
  }
  const refsBlock = encodeNode({ kind: REFS_KIND, version: 1, refs: Object.fromEntries(refs.map((r) => [r.name, r.cid])) })
  const values = new CidSet()
  const roots = [refsBlock.cid, ...refs.map((r) => r.cid).filter((c) => values.addNew(c))]

  const tmp = `${file}.${process.pid}.tmp`
  // Removed if the process is interrupted: a bundle of a large store is large.
  const release = trackTempFile(tmp)
  const { writer, out } = CarWriter.create(roots)
  const written = pipeline(Readable.from(out), createWriteStream(tmp))
  let blocks = 0
  let bytes = 0
  try {
    const put = async (b: Block): Promise<void> => {
      // If the file cannot be written the reader stops, and a put would wait forever: race it.
      await Promise.race([writer.put(b), written])
      blocks++
      bytes += b.bytes.length
      onProgress?.({ phase: 'write', blocks, bytes })
    }
    try {
      await put(refsBlock)
      for await (const b of postOrder(repo.blocks, roots.slice(1))) await put(b)
    } finally {
      await writer.close()
    }
    await written
    await rename(tmp, file)
  } catch (e) {
    await written.catch(() => {})
    await rm(tmp, { force: true })
    throw e
  } finally {
    release()
  }
  return { file, roots, refs, blocks, bytes: (await stat(file)).size }
}

/**
 * Check a bundle offline: every block against its CID (streaming), the refs block, and that
 * the DAG under every ref is whole inside the bundle (reading blocks by offset; memory holds
 * the index only). Throws, naming the CID or the problem, if anything is wrong.
 *
 * @example
 * const { refs, blocks } = await verifyBundle('campaign-7.car')
 */
export async function verifyBundle(file: string, { onProgress }: { onProgress?: (p: SyncProgress) => void } = {}): Promise<VerifyBundleResult> {
  let refsBlock: Block | undefined
  let blocks = 0
  let bytes = 0
  const roots = await readCar(file, async (block, roots) => {
    verifyIncoming(block.cid, block.bytes)
    if (block.cid.equals(roots[0]!)) refsBlock = block
    blocks++
    bytes += block.bytes.length
    onProgress?.({ phase: 'receive', blocks, bytes })
  })
  const refs = readRefsBlock(file, roots, refsBlock)
  const reader = await CarIndexedReader.fromFile(file).catch((e: Error) => {
    throw malformed(file, e)
  })
  try {
    const check = await checkComplete(new CarBlockstore(reader), refs.map((r) => r.cid), {
      where: `the bundle ${file} is incomplete`,
      onProgress: (n) => onProgress?.({ phase: 'verify', blocks: n, bytes: 0 }),
    })
    return { file, roots, refs, blocks, bytes: (await stat(file)).size, commits: check.commits }
  } finally {
    await reader.close()
  }
}

/**
 * Import a bundle: store its blocks (each verified first; streaming), check the DAG under
 * every ref is whole, then set `remotes/<remote>/<ref>` (remote `bundle` by default) for
 * each, and the local ref of the same name where it is new or a fast-forward. A truncated
 * or corrupt bundle fails naming the problem and moves no ref (blocks that verified stay,
 * unreachable).
 *
 * @example
 * const r = await importBundle(repo, 'campaign-7.car', { who: { name: 'ana' } })
 */
export async function importBundle(
  repo: Repository,
  file: string,
  { who, remote = 'bundle', onProgress }: { who: Person; remote?: string; onProgress?: (p: SyncProgress) => void },
): Promise<ImportBundleResult> {
  checkRemoteName(remote)
  const writer = new VerifiedWriter(repo.blocks)
  let refsBlock: Block | undefined
  let roots: CID[]
  try {
    roots = await readCar(file, async (block, roots) => {
      if (block.cid.equals(roots[0]!)) {
        verifyIncoming(block.cid, block.bytes)
        refsBlock = block // read, not stored: it names refs, and no ref will point at it
        return
      }
      await writer.add(block)
      onProgress?.({ phase: 'receive', blocks: writer.blocks, bytes: writer.totalBytes })
    })
  } catch (e) {
    await writer.flush().catch(() => {})
    throw e
  }
  await writer.flush()
  const refs = readRefsBlock(file, roots, refsBlock)
  await checkComplete(repo.blocks, refs.map((r) => r.cid), {
    known: await refValues(repo),
    where: `the bundle ${file} is incomplete`,
    onProgress: (n) => onProgress?.({ phase: 'verify', blocks: n, bytes: 0 }),
  })
  const out: ImportedRef[] = []
  for (const r of refs) {
    const tracking = trackingRef(remote, r.name)
    await repo.refs.update(tracking, { next: r.cid, who, message: `bundle import: ${file}`, remoteTracking: true })
    const local = (await repo.refs.get(r.name)) ?? null
    let status: ImportedRef['local']
    if (!local) status = 'created'
    else if (local.equals(r.cid)) status = 'up-to-date'
    else if (!r.name.startsWith(TAG_PREFIX) && (await isAncestor(repo.blocks, local, r.cid))) status = 'fast-forward'
    else status = 'kept'
    if (status === 'created' || status === 'fast-forward') {
      await repo.refs.update(r.name, { next: r.cid, expect: local, who, message: `bundle import: ${file}` })
    }
    out.push({ ref: r.name, cid: r.cid, tracking, local: status })
  }
  await ensureIndexed(repo)
  return { file, refs: out, blocks: writer.blocks + (refsBlock ? 1 : 0), bytes: writer.totalBytes + (refsBlock?.bytes.length ?? 0) }
}

/** Stream a CAR file's blocks to `each`; the roots are returned. Malformed or truncated files fail clearly. */
async function readCar(file: string, each: (block: Block, roots: CID[]) => Promise<void>): Promise<CID[]> {
  await stat(file).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') throw new NotFoundError('bundle', file)
    throw new StoreError(`cannot read ${file}: ${e.message}`, { file }, { cause: e })
  })
  let iterator: CarBlockIterator
  try {
    iterator = await CarBlockIterator.fromIterable(createReadStream(file))
  } catch (e) {
    throw malformed(file, e as Error)
  }
  const roots = (await iterator.getRoots()).map((c) => CID.asCID(c)!)
  if (iterator.version !== 1) throw malformed(file, new Error(`CAR version ${iterator.version}; pedigree bundles are CARv1`))
  if (roots.length === 0) throw notPedigree(file, 'it has no roots')
  try {
    for await (const block of iterator) await each({ cid: CID.asCID(block.cid)!, bytes: block.bytes }, roots)
  } catch (e) {
    if (e instanceof PedigreeError) throw e
    throw malformed(file, e as Error)
  }
  return roots
}

function malformed(file: string, e: Error): PedigreeError {
  const truncated = /unexpected end/i.test(e.message)
  return new PedigreeError('ERR_CORRUPT', `the bundle ${file} is ${truncated ? 'truncated' : 'not a valid CAR file'}: ${e.message}`, { file, reason: e.message, truncated }, { cause: e })
}

function notPedigree(file: string, why: string): PedigreeError {
  return new PedigreeError('ERR_INVALID_INPUT', `${file} is not a pedigree bundle: ${why} (its first root must be a "${REFS_KIND}" block)`, { file })
}

/** The refs a bundle carries, from its (verified) refs block. */
function readRefsBlock(file: string, roots: CID[], block: Block | undefined): BundleRef[] {
  if (!block) {
    throw new IncompleteDagError([{ cid: roots[0]!, as: 'any' }], `the bundle ${file} lacks its refs block (is it truncated?)`)
  }
  const value = block.cid.code === RAW ? undefined : decodeBlockUnchecked<{ kind?: unknown; refs?: unknown }>(block.cid, block.bytes)
  if (!value || typeof value !== 'object' || value.kind !== REFS_KIND || !value.refs || typeof value.refs !== 'object') {
    throw notPedigree(file, `its first root ${cidToString(roots[0]!)} is not a refs block`)
  }
  const refs: BundleRef[] = []
  for (const [name, link] of Object.entries(value.refs as Record<string, unknown>)) {
    const cid = CID.asCID(link)
    checkRefName(name)
    if (!cid) throw notPedigree(file, `ref '${name}' is not a link`)
    if (name.startsWith(REMOTE_PREFIX)) throw notPedigree(file, `it carries '${name}', a remotes/… ref`)
    refs.push({ name, cid })
  }
  if (refs.length === 0) throw notPedigree(file, 'its refs block names no refs')
  return refs
}

/**
 * Every block reachable from `heads`, each after the blocks it links to, each once. Blocks
 * that records link to are included when the store has them. Memory: the CIDs seen, and a
 * stack as deep as the history.
 */
async function* postOrder(blocks: Blockstore, heads: readonly CID[]): AsyncGenerator<Block> {
  const seen = new CidSet()
  type Frame = { block: Block; links: DagLink[]; next: number; prefetched: Map<string, Uint8Array | undefined> }
  const frame = async (block: Block, as: DagLink): Promise<Frame> => {
    const links = linksOfNode(block.cid, block.bytes, as.as, as.optional)
    // Small structured children (records, tree nodes) are read together; chunks as they come.
    const structured = links.filter((l) => l.cid.code !== RAW)
    const got = structured.length > 1 && as.as === 'tree' ? await blocks.getMany(structured.map((l) => l.cid)) : []
    const prefetched = new Map<string, Uint8Array | undefined>()
    got.forEach((b, i) => prefetched.set(structured[i]!.cid.toString(), b))
    return { block, links, next: 0, prefetched }
  }
  const read = async (link: DagLink, prefetched?: Map<string, Uint8Array | undefined>): Promise<Block | undefined> => {
    const key = link.cid.toString()
    const bytes = prefetched?.has(key) ? prefetched.get(key) : await blocks.tryGet(link.cid)
    if (!bytes) {
      if (link.optional) return undefined
      throw new IncompleteDagError([{ cid: link.cid, as: link.as }], 'the local store is missing part of what is being bundled (run `pedigree fsck`)')
    }
    return { cid: link.cid, bytes }
  }
  for (const head of heads) {
    if (!seen.addNew(head)) continue
    const link: DagLink = { cid: head, as: 'commit', optional: false }
    const stack: Frame[] = [await frame((await read(link))!, link)]
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!
      if (top.next < top.links.length) {
        const child = top.links[top.next++]!
        if (seen.has(child.cid)) continue
        const b = await read(child, top.prefetched)
        if (!b) continue
        seen.add(child.cid)
        if (child.cid.code === RAW) {
          yield b
          continue
        }
        stack.push(await frame(b, child))
        continue
      }
      stack.pop()
      yield top.block
    }
  }
}

/** A read-only Blockstore over an indexed CAR file (bundle verify). */
class CarBlockstore implements Blockstore {
  readonly supports = { delete: false, prefixScan: false }
  constructor(private readonly reader: CarIndexedReader) {}
  async get(cid: CID): Promise<Uint8Array> {
    const b = await this.tryGet(cid)
    if (!b) throw new NotFoundError('block', cidToString(cid))
    return b
  }
  async tryGet(cid: CID): Promise<Uint8Array | undefined> {
    return (await this.reader.get(cid))?.bytes
  }
  async getMany(cids: readonly CID[]): Promise<(Uint8Array | undefined)[]> {
    const out: (Uint8Array | undefined)[] = []
    for (const c of cids) out.push(await this.tryGet(c))
    return out
  }
  has(cid: CID): Promise<boolean> {
    return this.reader.has(cid)
  }
  async hasMany(cids: readonly CID[]): Promise<boolean[]> {
    return Promise.all(cids.map((c) => this.reader.has(c)))
  }
  async storedSizes(cids: readonly CID[]): Promise<(BlockSizes | undefined)[]> {
    return cids.map((c) => {
      const at = this.reader._index.get(c.toString())
      return at ? { size: at.blockLength, stored: at.blockLength } : undefined
    })
  }
  async put(): Promise<void> {
    throw new PedigreeError('ERR_REFUSED', 'a bundle is read-only')
  }
  async putMany(): Promise<void> {
    throw new PedigreeError('ERR_REFUSED', 'a bundle is read-only')
  }
  async *cids(): AsyncIterable<CID> {
    for await (const c of this.reader.cids()) yield CID.asCID(c)!
  }
}
