import { describe, expect, it } from 'vitest'
import { createHash } from 'node:crypto'
import { Repository } from '../../src/repo/repository.js'
import { fileChunks, readFile } from '../../src/model/file.js'
import { parseSafetensors, tensorCutPoints } from '../../src/model/safetensors.js'
import { prng } from '../helpers/random.js'

type Spec = { name: string; shape: number[]; seed: number }

/** A real safetensors layout: u64 LE header length, JSON header, F32 tensor data. */
function safetensors(specs: Spec[]): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } }
  const datas: Buffer[] = []
  let offset = 0
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1)
    const f = new Float32Array(n)
    const rand = prng(s.seed)
    for (let i = 0; i < n; i++) f[i] = rand() - 0.5
    header[s.name] = { dtype: 'F32', shape: s.shape, data_offsets: [offset, offset + f.byteLength] }
    offset += f.byteLength
    datas.push(Buffer.from(f.buffer))
  }
  const json = Buffer.from(JSON.stringify(header))
  const len = Buffer.alloc(8)
  len.writeBigUInt64LE(BigInt(json.length))
  return Buffer.concat([len, json, ...datas])
}

const layers = (seeds: number[]): Spec[] => seeds.map((seed, i) => ({ name: `layers.${i}.weight`, shape: [384, 512], seed }))
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

async function readAll(repo: Repository, rev: string): Promise<Buffer> {
  const entry = await repo.resolveEntry(rev)
  const parts: Uint8Array[] = []
  for await (const p of readFile(repo.blocks, entry.entry.cid)) parts.push(p)
  return Buffer.concat(parts)
}

const author = { name: 'test' }

describe('safetensors checkpoints', () => {
  it('parses the header and cuts at every tensor boundary', () => {
    const bytes = safetensors(layers([1, 2, 3]))
    const layout = parseSafetensors(bytes, bytes.length)!
    expect(layout.tensors.map((t) => t.name)).toEqual(['layers.0.weight', 'layers.1.weight', 'layers.2.weight'])
    expect(layout.metadata).toEqual({ format: 'pt' })
    const cuts = tensorCutPoints(layout)
    expect(cuts[0]).toBe(layout.dataStart)
    expect(cuts).toContain(layout.tensors[1]!.begin)
    expect(cuts[cuts.length - 1]).toBe(bytes.length)
  })

  it('a fine-tune that rewrites one tensor shares every other tensor exactly, and diff names it', async () => {
    const repo = Repository.memory()
    const v1 = safetensors(layers([1, 2, 3, 4, 5, 6]))
    const v2 = safetensors(layers([1, 2, 99, 4, 5, 6]))
    await repo.commit({ ref: 'main', author, message: 'v1', edits: [{ type: 'bytes', path: 'model/m.safetensors', bytes: v1 }] })
    await repo.commit({ ref: 'main', author, message: 'v2', edits: [{ type: 'bytes', path: 'model/m.safetensors', bytes: v2 }] })
    expect(sha(await readAll(repo, 'main~1:model/m.safetensors'))).toBe(sha(v1))
    expect(sha(await readAll(repo, 'main:model/m.safetensors'))).toBe(sha(v2))

    // Every chunk lies inside one tensor (or the header): none straddles a boundary.
    const layout = parseSafetensors(v2, v2.length)!
    const cuts = new Set(tensorCutPoints(layout))
    const entry = await repo.resolveEntry('main:model/m.safetensors')
    for await (const c of fileChunks(repo.blocks, entry.entry.cid)) {
      for (const cut of cuts) expect(cut > c.offset && cut < c.offset + c.length).toBe(false)
    }

    const items = []
    for await (const d of repo.diff('main~1', 'main')) items.push(d)
    expect(items).toHaveLength(1)
    expect(items[0]!.tensors).toEqual([{ name: 'layers.2.weight', change: 'changed', before: { dtype: 'F32', shape: [384, 512] }, after: { dtype: 'F32', shape: [384, 512] } }])
    // Only the rewritten tensor (768 KiB) is new storage.
    const tensorBytes = 384 * 512 * 4
    expect(items[0]!.storage!.newBytes).toBe(tensorBytes)
  })

  it('lists added, removed and reshaped tensors', async () => {
    const repo = Repository.memory()
    const v1 = safetensors([...layers([1, 2]), { name: 'head.weight', shape: [10, 512], seed: 7 }])
    const v2 = safetensors([{ name: 'layers.0.weight', shape: [384, 512], seed: 1 }, { name: 'layers.1.weight', shape: [512, 384], seed: 2 }, { name: 'head.bias', shape: [10], seed: 8 }])
    await repo.commit({ ref: 'main', author, edits: [{ type: 'bytes', path: 'm.safetensors', bytes: v1 }] })
    await repo.commit({ ref: 'main', author, edits: [{ type: 'bytes', path: 'm.safetensors', bytes: v2 }] })
    const [d] = await collect(repo.diff('main~1', 'main'))
    expect(d!.tensors!.map((t) => [t.name, t.change])).toEqual([
      ['head.bias', 'added'],
      ['head.weight', 'removed'],
      ['layers.1.weight', 'reshaped'],
    ])
  })

  it('a truncated header is stored and diffed as plain binary, with a note', async () => {
    const repo = Repository.memory()
    const good = safetensors(layers([1]))
    const truncated = good.subarray(0, 40) // declares a longer header than the file holds
    await repo.commit({ ref: 'main', author, edits: [{ type: 'bytes', path: 'm.safetensors', bytes: good }] })
    await repo.commit({ ref: 'main', author, edits: [{ type: 'bytes', path: 'm.safetensors', bytes: truncated }] })
    expect(sha(await readAll(repo, 'main:m.safetensors'))).toBe(sha(truncated))
    const [d] = await collect(repo.diff('main~1', 'main'))
    expect(d!.binary).toBe(true)
    expect(d!.tensors).toBeUndefined()
    expect(d!.note).toMatch(/truncated safetensors header/)
  })
})

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}
