import { mkdtemp, readlink, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import type { FileHandle } from 'node:fs/promises'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { rawBlock } from '../../src/codec/block.js'
import { ENCODING_NONE } from '../../src/codec/compress.js'
import { PackFiles, PACK_HEADER_BYTES, packFileName, type PackRecord } from '../../src/store/pack.js'

/**
 * Write order under a power cut (which SIGKILL cannot show: the kernel keeps a killed process's
 * writes): every pack byte that an index entry names must have been fdatasync'ed before that
 * entry is written. The blockstore takes a sync point, syncs it (appends may go on meanwhile),
 * then records the point's entries; bytes appended after the point are the next point's to sync.
 */

const record = (seed: number, size: number): PackRecord => {
  const bytes = new Uint8Array(size).fill(seed)
  return { cid: rawBlock(bytes).cid, encoding: ENCODING_NONE, size, bytes }
}

/** The pack files a sync point will fdatasync (Linux: the path behind each open descriptor). */
async function packsCovered(handles: readonly FileHandle[]): Promise<string[]> {
  const names: string[] = []
  for (const fh of handles) {
    expect(fh.fd, 'a sync point names a closed pack file').toBeGreaterThanOrEqual(0)
    names.push(basename(await readlink(`/proc/self/fd/${fh.fd}`)))
  }
  return names.sort()
}

describe.runIf(process.platform === 'linux')('pack sync points', () => {
  let dir: string
  let packs: PackFiles | undefined

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pedigree-pack-sync-'))
  })
  afterEach(async () => {
    await packs?.close()
    packs = undefined
    await rm(dir, { recursive: true, force: true })
  })

  it('bytes appended to a pack after a sync point was taken, then rolled past, are covered by the next sync point', async () => {
    // Room for two 1000-byte records per pack: the third starts pack 2.
    packs = await PackFiles.open(dir, undefined, { target: PACK_HEADER_BYTES + 2 * 1100 })
    await packs.append([record(1, 1000)])
    const first = packs.syncPoint()
    expect(await packsCovered(first.handles)).toEqual([packFileName(1)])

    // While the first point is being synced, a writer appends to pack 1 and then rolls to pack 2.
    const [late] = await packs.append([record(2, 1000)])
    const [next] = await packs.append([record(3, 1000)])
    expect(late!.pack).toBe(1)
    expect(next!.pack).toBe(2)
    await packs.sync(first)

    // The next point records `late` in the index: pack 1 must be fdatasync'ed again for it.
    const second = packs.syncPoint()
    expect(second.state).toEqual({ pack: 2, end: next!.offset + 1000 })
    expect(await packsCovered(second.handles)).toEqual([packFileName(1), packFileName(2)])
    await packs.sync(second)
    // Once synced with nothing appended since, pack 1 is closed and not synced again.
    expect(await packsCovered(packs.syncPoint().handles)).toEqual([])
  })
})
