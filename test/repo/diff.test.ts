import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { CID } from '../../src/codec/cid.js'
import type { DiffItem } from '../../src/repo/diff.js'
import type { Repository } from '../../src/repo/repository.js'
import { BACKENDS, collect, commitAt, record, text, type RepoFixture } from './fixture.js'

describe.each(BACKENDS)('diff ($name)', ({ open }) => {
  let fx: RepoFixture
  let repo: Repository
  let dataset: CID
  let calibration: CID

  beforeEach(async () => {
    fx = await open()
    repo = fx.repo
    await commitAt(repo, 'main', 1, [
      record('inputs/dataset.json', { name: 'scan-17' }),
      record('inputs/calibration.json', { run: 4 }),
    ])
    dataset = (await repo.resolveEntry('main:inputs/dataset.json')).entry.cid
    calibration = (await repo.resolveEntry('main:inputs/calibration.json')).entry.cid
    await commitAt(repo, 'main', 2, [
      record('runs/1.json', {
        type: 'training',
        metrics: { loss: 0.31, acc: 0.8 },
        layers: [64, 32, { units: 16, act: 'relu' }],
        used: dataset,
        obsolete: 'yes',
        notes: [],
      }),
      text('train.py', 'import torch\nlr = 0.1\nepochs = 3\nprint("go")\n'),
      { type: 'bytes', path: 'weights.bin', bytes: new Uint8Array([1, 0, 2, 0, 3]) },
      text('gone.txt', 'bye\n'),
      record('config/a.json', { a: 1 }),
      record('config2/b.json', { b: 1 }),
    ])
    await commitAt(repo, 'main', 3, [
      record('runs/1.json', {
        type: 'training',
        metrics: { loss: 0.27, acc: 0.8, f1: 0.5 },
        layers: [64, 48, { units: 16, act: 'gelu' }, 8],
        used: calibration,
        notes: [],
      }),
      text('train.py', 'import torch\nlr = 0.01\nepochs = 3\nprint("go")\n'),
      { type: 'bytes', path: 'weights.bin', bytes: new Uint8Array([1, 0, 2, 0, 4]) },
      { type: 'remove', path: 'gone.txt' },
      text('new.txt', 'hello\n'),
      record('config/a.json', { a: 2 }),
      record('config2/b.json', { b: 2 }),
      record('runs/2.json', { loss: 0.2 }),
    ])
  })
  afterEach(async () => {
    await fx.cleanup()
  })

  const byPath = (items: DiffItem[]): Map<string, DiffItem> => new Map(items.map((d) => [d.path, d]))

  it('lists added, removed and modified paths in order', async () => {
    const items = await collect(repo.diff('main~1', 'main'))
    expect(items.map((d) => [d.type, d.path, d.kind])).toEqual([
      ['modified', 'config/a.json', 'record'],
      ['modified', 'config2/b.json', 'record'],
      ['removed', 'gone.txt', 'file'],
      ['added', 'new.txt', 'file'],
      ['modified', 'runs/1.json', 'record'],
      ['added', 'runs/2.json', 'record'],
      ['modified', 'train.py', 'file'],
      ['modified', 'weights.bin', 'file'],
    ])
    const m = byPath(items)
    expect(m.get('gone.txt')!.after).toBeUndefined()
    expect(m.get('gone.txt')!.before?.size).toBe(4)
    expect(m.get('new.txt')!.before).toBeUndefined()
    expect(m.get('new.txt')!.after?.size).toBe(6)
    expect(await collect(repo.diff('main', 'main'))).toEqual([])
    // The other way round swaps added and removed.
    const back = byPath(await collect(repo.diff('main', 'main~1')))
    expect(back.get('gone.txt')!.type).toBe('added')
    expect(back.get('new.txt')!.type).toBe('removed')
  })

  it('gives records field-level changes by dotted path, links as {"/": cid}', async () => {
    const run = byPath(await collect(repo.diff('main~1', 'main'))).get('runs/1.json')!
    expect(run.patch).toBeUndefined()
    expect(run.fields).toEqual([
      { field: 'layers.1', before: 32, after: 48 },
      { field: 'layers.2.act', before: 'relu', after: 'gelu' },
      { field: 'layers.3', after: 8 },
      { field: 'metrics.f1', after: 0.5 },
      { field: 'metrics.loss', before: 0.31, after: 0.27 },
      { field: 'obsolete', before: 'yes' },
      { field: 'used', before: { '/': dataset.toString() }, after: { '/': calibration.toString() } },
    ])
    const added = byPath(await collect(repo.diff('main~1', 'main'))).get('runs/2.json')!
    expect(added.fields).toEqual([{ field: 'loss', after: 0.2 }])
    const removed = byPath(await collect(repo.diff('main', 'main~1'))).get('runs/2.json')!
    expect(removed.fields).toEqual([{ field: 'loss', before: 0.2 }])
  })

  it('gives text files a unified patch and binary files binary: true', async () => {
    const m = byPath(await collect(repo.diff('main~1', 'main')))
    const py = m.get('train.py')!
    expect(py.binary).toBeUndefined()
    expect(py.patch).toContain('--- a/train.py')
    expect(py.patch).toContain('+++ b/train.py')
    expect(py.patch).toContain('@@')
    expect(py.patch).toContain('\n-lr = 0.1\n')
    expect(py.patch).toContain('\n+lr = 0.01\n')
    expect(py.patch).toContain('\n import torch\n')
    expect(py.patch).not.toMatch(/^[-+]epochs/m)

    expect(m.get('new.txt')!.patch).toContain('\n+hello\n')
    expect(m.get('gone.txt')!.patch).toContain('\n-bye\n')

    const bin = m.get('weights.bin')!
    expect(bin.binary).toBe(true)
    expect(bin.patch).toBeUndefined()
    expect(bin.before!.cid.equals(bin.after!.cid)).toBe(false)
    expect(bin.tooLargeForText).toBeUndefined()
  })

  it('says a text file larger than maxTextBytes is too large for a line diff, not binary text', async () => {
    const lines = (n: number): string => Array.from({ length: n }, (_, i) => `${i}`).join('\n') + '\n'
    await commitAt(repo, 'main', 10, [text('big.txt', lines(3000))])
    await commitAt(repo, 'main', 11, [text('big.txt', lines(3001))])
    const [big] = await collect(repo.diff('main~1', 'main', { maxTextBytes: 4096 }))
    expect(big).toMatchObject({ path: 'big.txt', binary: true, tooLargeForText: true })
    expect(big!.patch).toBeUndefined()
    const [same] = await collect(repo.diff('main~1', 'main'))
    expect(same!.tooLargeForText).toBeUndefined()
    expect(same!.patch).toContain('+3000')
  })

  it('restricts to a path and everything under it, not siblings sharing the prefix', async () => {
    expect((await collect(repo.diff('main~1', 'main', { path: 'config' }))).map((d) => d.path)).toEqual(['config/a.json'])
    expect((await collect(repo.diff('main~1', 'main', { path: 'config/' }))).map((d) => d.path)).toEqual(['config/a.json'])
    expect((await collect(repo.diff('main~1', 'main', { path: 'runs' }))).map((d) => d.path)).toEqual(['runs/1.json', 'runs/2.json'])
    expect((await collect(repo.diff('main~1', 'main', { path: 'train.py' }))).map((d) => d.path)).toEqual(['train.py'])
    expect(await collect(repo.diff('main~1', 'main', { path: 'inputs' }))).toEqual([])
  })

  it('stat gives the changes without fields or patches', async () => {
    const items = await collect(repo.diff('main~1', 'main', { stat: true }))
    expect(items).toHaveLength(8)
    for (const d of items) {
      expect(d.fields, d.path).toBeUndefined()
      expect(d.patch, d.path).toBeUndefined()
      expect(d.binary, d.path).toBeUndefined()
    }
    expect(items.find((d) => d.path === 'runs/1.json')!.after!.kind).toBe('record')
  })

  it('diffs a path that changed from a record to a file as text, the record as its JSON', async () => {
    await commitAt(repo, 'main', 4, [text('runs/2.json', '{"loss": 0.2}\n')])
    const [item] = await collect(repo.diff('main~1', 'main'))
    expect(item).toMatchObject({ type: 'modified', path: 'runs/2.json', kind: 'file' })
    expect(item!.before!.kind).toBe('record')
    expect(item!.patch).toContain('\n-  "loss": 0.2\n')
    expect(item!.patch).toContain('\n+{"loss": 0.2}\n')
    const [back] = await collect(repo.diff('main', 'main~1'))
    expect(back).toMatchObject({ type: 'modified', path: 'runs/2.json', kind: 'record' })
  })

  it('diffs across several commits and from an empty history', async () => {
    const all = await collect(repo.diff('main~2', 'main', { stat: true }))
    expect(all.map((d) => [d.type, d.path])).toEqual([
      ['added', 'config/a.json'],
      ['added', 'config2/b.json'],
      ['added', 'new.txt'],
      ['added', 'runs/1.json'],
      ['added', 'runs/2.json'],
      ['added', 'train.py'],
      ['added', 'weights.bin'],
    ])
  })
})
