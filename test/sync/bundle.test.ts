import { createReadStream } from 'node:fs'
import { readFile as readBytes, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CarReader } from '@ipld/car/reader'
import { CarIndexer } from '@ipld/car/indexer'
import * as dagCbor from '@ipld/dag-cbor'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { readFile } from '../../src/model/file.js'
import type { Repository } from '../../src/repo/repository.js'
import { REFS_KIND, createBundle, importBundle, verifyBundle } from '../../src/sync/bundle.js'
import { pseudoRandom } from '../helpers/random.js'
import { bytesOf, commitAt, record } from '../repo/fixture.js'
import { Stores, WHO, refsOf, rejectionOf } from './helpers.js'

let s: Stores
beforeEach(async () => {
  s = await Stores.make()
})
afterEach(async () => {
  await s.cleanup()
})

async function campaign(repo: Repository): Promise<{ weights: Uint8Array }> {
  const weights = pseudoRandom(7, 2 * 1024 * 1024 + 5)
  await commitAt(repo, 'main', 1, [record('runs/1.json', { loss: 0.5 }), { type: 'bytes', path: 'model/w.bin', bytes: weights }])
  await commitAt(repo, 'main', 2, [record('runs/2.json', { loss: 0.4 })])
  await repo.tag('v1', 'main~1', { tagger: WHO, message: 'first', time: 9 })
  return { weights }
}

/** Offsets at which each block's section starts, and the file's length. */
async function sections(file: string): Promise<{ offsets: number[]; length: number }> {
  const indexer = await CarIndexer.fromIterable(createReadStream(file))
  const offsets: number[] = []
  for await (const b of indexer) offsets.push(b.offset)
  return { offsets, length: (await readBytes(file)).length }
}

describe('CAR bundles', () => {
  it('round-trips: create, verify, read with @ipld/car, import byte-exact', async () => {
    const src = await s.init('src')
    const { weights } = await campaign(src)
    const file = join(s.dir, 'campaign.car')
    const made = await createBundle(src, file, { refs: ['main', 'v1'] })
    expect(made.refs.map((r) => r.name)).toEqual(['main', 'tags/v1'])

    // A plain CARv1 that @ipld/car reads: the refs block first among the roots, then the ref values.
    const reader = await CarReader.fromBytes(await readBytes(file))
    const roots = await reader.getRoots()
    expect(roots.map(String)).toEqual(made.roots.map(String))
    expect(roots.slice(1).map(String)).toEqual([(await src.refs.get('main'))!.toString(), (await src.refs.get('tags/v1'))!.toString()])
    const refsBlock = dagCbor.decode<{ kind: string; refs: Record<string, unknown> }>((await reader.get(roots[0]!))!.bytes)
    expect(refsBlock.kind).toBe(REFS_KIND)
    expect(Object.keys(refsBlock.refs).sort()).toEqual(['main', 'tags/v1'])
    let count = 0
    for await (const _ of reader.blocks()) count++
    expect(count).toBe(made.blocks)

    const verified = await verifyBundle(file)
    expect(verified.blocks).toBe(made.blocks)
    expect(verified.refs.map((r) => r.name)).toEqual(['main', 'tags/v1'])

    const dst = await s.init('dst')
    const imported = await importBundle(dst, file, { who: WHO })
    expect(imported.refs.map((r) => [r.ref, r.local, r.tracking])).toEqual([
      ['main', 'created', 'remotes/bundle/main'],
      ['tags/v1', 'created', 'remotes/bundle/tags/v1'],
    ])
    const theirs = await refsOf(src)
    const ours = await refsOf(dst)
    expect(ours['main']).toBe(theirs['main'])
    expect(ours['tags/v1']).toBe(theirs['tags/v1'])
    expect(ours['remotes/bundle/main']).toBe(theirs['main'])
    const entry = await dst.resolveEntry('main:model/w.bin')
    expect(Buffer.compare(await bytesOf(readFile(dst.blocks, entry.entry.cid)), Buffer.from(weights))).toBe(0)
    const check = await dst.fsck()
    expect(check.ok).toBe(true)
    expect(check.unindexed).toBe(0)

    // Importing again changes nothing; a diverged local ref is kept, the bundle's value tracked.
    expect((await importBundle(dst, file, { who: WHO })).refs.map((r) => r.local)).toEqual(['up-to-date', 'up-to-date'])
    await commitAt(src, 'main', 3, [record('runs/3.json', { loss: 0.3 })])
    const ours2 = await commitAt(dst, 'main', 4, [record('runs/9.json', { local: true })])
    const file2 = join(s.dir, 'next.car')
    await createBundle(src, file2, { refs: ['main'] })
    const r2 = await importBundle(dst, file2, { who: WHO })
    expect(r2.refs[0]!.local).toBe('kept')
    expect((await dst.refs.get('main'))?.equals(ours2.cid)).toBe(true)
    expect((await dst.refs.get('remotes/bundle/main'))?.equals((await src.refs.get('main'))!)).toBe(true)
  })

  it('bundles every ref but remotes/… when none is named; fast-forwards an existing local ref', async () => {
    const src = await s.init('src')
    await campaign(src)
    await src.refs.update('remotes/x/main', { next: (await src.refs.get('main'))!, who: WHO, message: 't', remoteTracking: true })
    const dst = await s.init('dst')
    const first = await importBundle(dst, await bundleOf(src, 'all.car', []), { who: WHO })
    expect(first.refs.map((x) => x.ref)).toEqual(['main', 'tags/v1'])
    const c3 = await commitAt(src, 'main', 3, [record('runs/3.json', { loss: 0.3 })])
    const next = await importBundle(dst, await bundleOf(src, 'next.car', ['main']), { who: WHO })
    expect(next.refs.map((x) => x.local)).toEqual(['fast-forward'])
    expect((await dst.refs.get('main'))?.equals(c3.cid)).toBe(true)
  })

  it('a truncated bundle fails verify and import, and no ref moves', async () => {
    const src = await s.init('src')
    await campaign(src)
    const file = await bundleOf(src, 'cut.car', ['main'])
    const { offsets, length } = await sections(file)

    // Cut inside a block.
    const mid = join(s.dir, 'mid.car')
    await writeFile(mid, (await readBytes(file)).subarray(0, length - 7))
    const v1 = await rejectionOf(verifyBundle(mid))
    expect(v1.code).toBe('ERR_CORRUPT')
    expect(v1.message).toContain('truncated')
    const dst = await s.init('dst')
    const i1 = await rejectionOf(importBundle(dst, mid, { who: WHO }))
    expect(i1.code).toBe('ERR_CORRUPT')
    expect(i1.message).toContain('truncated')
    expect(await refsOf(dst)).toEqual({})

    // Cut exactly between blocks: the CAR reads cleanly, but the DAG is not whole.
    const atBoundary = join(s.dir, 'boundary.car')
    await writeFile(atBoundary, await readBytes(file))
    await truncate(atBoundary, offsets[offsets.length - 1]!)
    const v2 = await rejectionOf(verifyBundle(atBoundary))
    expect(v2.code).toBe('ERR_INCOMPLETE')
    expect(v2.data?.cid).toBe((await src.refs.get('main'))!.toString())
    const i2 = await rejectionOf(importBundle(dst, atBoundary, { who: WHO }))
    expect(i2.code).toBe('ERR_INCOMPLETE')
    expect(await refsOf(dst)).toEqual({})
    // Once the whole bundle arrives, it imports.
    await importBundle(dst, file, { who: WHO })
    expect((await dst.fsck()).ok).toBe(true)
  })

  it('a block whose bytes do not match its CID fails naming the CID', async () => {
    const src = await s.init('src')
    await campaign(src)
    const file = await bundleOf(src, 'bad.car', ['main'])
    const indexer = await CarIndexer.fromIterable(createReadStream(file))
    const blocks = []
    for await (const b of indexer) blocks.push(b)
    const victim = blocks[3]!
    const bytes = await readBytes(file)
    bytes[victim.blockOffset + Math.floor(victim.blockLength / 2)]! ^= 0xff
    const bad = join(s.dir, 'flipped.car')
    await writeFile(bad, bytes)
    const err = await rejectionOf(verifyBundle(bad))
    expect(err.code).toBe('ERR_CORRUPT')
    expect(err.data?.cid).toBe(victim.cid.toString())
    const dst = await s.init('dst')
    const e2 = await rejectionOf(importBundle(dst, bad, { who: WHO }))
    expect(e2.data?.cid).toBe(victim.cid.toString())
    expect(await refsOf(dst)).toEqual({})
  })

  it('refuses a file that is not a pedigree bundle', async () => {
    const junk = join(s.dir, 'junk.car')
    await writeFile(junk, 'not a car file at all')
    expect((await rejectionOf(verifyBundle(junk))).code).toBe('ERR_CORRUPT')
    expect((await rejectionOf(verifyBundle(join(s.dir, 'missing.car')))).code).toBe('ERR_NOT_FOUND')
  })
})

async function bundleOf(repo: Repository, name: string, refs: string[]): Promise<string> {
  const file = join(s.dir, name)
  await createBundle(repo, file, { refs })
  return file
}
