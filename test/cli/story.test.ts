import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { removeDir, runCli, runJson, tempDir } from './run-cli.js'

/**
 * The main story, as a user would live it: init, two commits of files and records, then
 * every way of looking at them and getting them back, and refs, tags and the reflog.
 * One store for the whole file; the tests run in order and later ones build on earlier ones.
 */

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const lines = (s: string): string[] => s.split('\n').filter((l) => l !== '')

/** Every byte value, NULs included, so that nothing may be treated as text. */
const BINARY = Buffer.concat([Buffer.from([0, 0, 1, 2, 0, 255, 254, 0]), Buffer.from(Array.from({ length: 512 }, (_, i) => i % 256))])
const A_V1 = 'hello\n'
const A_V2 = 'hello\nhello again\n'

let dir: string
let cwd: string
let c1: string // first commit
let c2: string // second commit
/** sha256 of each file as it was in the first commit. */
const v1Files = new Map<string, string>()

async function filesUnder(root: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(root, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(relative(root, join(e.parentPath, e.name)))
  }
  return out.sort()
}

beforeAll(async () => {
  dir = await tempDir('story')
  cwd = join(dir, 'work')
  await mkdir(join(cwd, 'data', 'sub', 'deep'), { recursive: true })
  await writeFile(join(cwd, 'data', 'a.txt'), A_V1)
  await writeFile(join(cwd, 'data', 'sub', 'bin.dat'), BINARY)
  await writeFile(join(cwd, 'data', 'sub', 'deep', 'c.txt'), 'deep\n')
  await writeFile(join(cwd, 'one.txt'), 'single file\n')
  await writeFile(join(cwd, 'train.json'), '{"lr": 0.01, "epochs": 3}')
  v1Files.set('data/a.txt', sha256(Buffer.from(A_V1)))
  v1Files.set('data/sub/bin.dat', sha256(BINARY))
  v1Files.set('data/sub/deep/c.txt', sha256(Buffer.from('deep\n')))
  v1Files.set('one/file.txt', sha256(Buffer.from('single file\n')))
}, 30_000)

afterAll(() => removeDir(dir))

describe('pedigree, the main story', { timeout: 20_000 }, () => {
  it('init creates a store in the current directory', async () => {
    const r = await runCli(['init'], { cwd })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain(`Initialized an empty pedigree store in ${join(cwd, '.pedigree')}`)
    expect(existsSync(join(cwd, '.pedigree', 'FORMAT'))).toBe(true)
  })

  it('commits a directory, a single file, records from a file and from stdin, with meta and a message', async () => {
    const r = await runCli(
      [
        'commit',
        'data',
        'one/file.txt=one.txt',
        '--record',
        'config/train.json=train.json',
        '--record',
        'metrics/m.json=-',
        '--meta',
        'site=aps',
        '--meta',
        'tags=["a",1]',
        '--meta',
        'version=1.10',
        '--meta',
        'seed=12345678901234567890',
        '--meta',
        'lr=0.5',
        '-m',
        'first run',
      ],
      { cwd, input: '{"loss": 0.5, "used": "calibration"}\n' },
    )
    expect(r.code, r.stderr).toBe(0)
    const m = /^\[main (baf[a-z2-7]+)\] first run$/m.exec(r.stdout)
    expect(m, r.stdout).not.toBeNull()
    c1 = m![1]!
    expect(r.stdout).toContain('6 added, 0 modified, 0 removed')
    expect(r.stderr).toBe('') // no terminal: no progress line
  })

  it('keeps --meta values as written: JSON where it round-trips, text where a number would change', async () => {
    const { code, json } = await runJson(['show', c1], { cwd })
    expect(code).toBe(0)
    expect(json.meta).toEqual({ site: 'aps', tags: ['a', 1], version: '1.10', seed: '12345678901234567890', lr: 0.5 })
  })

  it('commits a second version (--json): one added, two modified, one removed', async () => {
    await writeFile(join(cwd, 'data', 'a.txt'), A_V2)
    await writeFile(join(cwd, 'data', 'new.txt'), 'new\n')
    await writeFile(join(cwd, 'train.json'), '{"lr": 0.02, "epochs": 3}')
    const { code, json } = await runJson(['commit', 'data', '--record', 'config/train.json=train.json', '--rm', 'one', '-m', 'second run'], { cwd })
    expect(code).toBe(0)
    expect(json.ref).toBe('main')
    expect(json.cid).toMatch(/^baf/)
    expect(json.tree).toMatch(/^baf/)
    expect(json.parent).toBe(c1)
    expect(json.changes).toEqual({ added: 1, modified: 2, removed: 1 })
    c2 = json.cid
  })

  it('log shows both commits newest first, with author, meta and message', async () => {
    const r = await runCli(['log'], { cwd })
    expect(r.code, r.stderr).toBe(0)
    const first = r.stdout.indexOf(`commit ${c2}`)
    const second = r.stdout.indexOf(`commit ${c1}`)
    expect(first).toBe(0)
    expect(second).toBeGreaterThan(first)
    expect(r.stdout).toContain('Author: Test <t@example.org>')
    expect(r.stdout).toContain('Meta:   lr=0.5 seed=12345678901234567890 site=aps tags=["a",1] version=1.10')
    expect(r.stdout).toContain('    first run')
    expect(r.stdout).toContain('    second run')
    expect(r.stdout).toMatch(/^Date: {3}\d{4}-\d\d-\d\dT/m)
  })

  it('log --oneline, -n and --path', async () => {
    const oneline = await runCli(['log', '--oneline'], { cwd })
    expect(lines(oneline.stdout)).toEqual([`${c2.slice(0, 16)} second run`, `${c1.slice(0, 16)} first run`])
    const limited = await runCli(['log', '--oneline', '-n', '1'], { cwd })
    expect(lines(limited.stdout)).toEqual([`${c2.slice(0, 16)} second run`])
    // data/sub changed only in the first commit; one/file.txt in both (added, then removed).
    const sub = await runCli(['log', 'main', '--oneline', '--path', 'data/sub'], { cwd })
    expect(lines(sub.stdout)).toEqual([`${c1.slice(0, 16)} first run`])
    const removed = await runCli(['log', '--oneline', '--path', 'one/file.txt'], { cwd })
    expect(lines(removed.stdout)).toHaveLength(2)
  })

  it('show <rev> lists the changed paths with A/M/D', async () => {
    const r = await runCli(['show', 'main'], { cwd })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.startsWith(`commit ${c2}\n`)).toBe(true)
    const marks = lines(r.stdout).filter((l) => /^[AMD] {2}/.test(l))
    expect(marks).toEqual(['M  config/train.json', 'M  data/a.txt', 'A  data/new.txt', 'D  one/file.txt'])
  })

  it('show rev:path prints a record as pretty JSON', async () => {
    const r = await runCli(['show', 'main~1:config/train.json'], { cwd })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe('{\n  "epochs": 3,\n  "lr": 0.01\n}\n')
    const stdin = await runCli(['show', 'main:metrics/m.json'], { cwd })
    expect(JSON.parse(stdin.stdout)).toEqual({ loss: 0.5, used: 'calibration' })
  })

  it('show rev:path prints a file exactly as stored, binary included', async () => {
    const bin = await runCli(['show', 'main:data/sub/bin.dat'], { cwd })
    expect(bin.code, bin.stderr).toBe(0)
    expect(bin.stdoutBytes.equals(BINARY)).toBe(true)
    const text = await runCli(['show', `${c1}:data/a.txt`], { cwd })
    expect(text.stdoutBytes.equals(Buffer.from(A_V1))).toBe(true)
  })

  it('ls, ls -l and ls with a prefix', async () => {
    const all = await runCli(['ls'], { cwd })
    expect(lines(all.stdout)).toEqual(['config/train.json', 'data/a.txt', 'data/new.txt', 'data/sub/bin.dat', 'data/sub/deep/c.txt', 'metrics/m.json'])
    const long = await runCli(['ls', 'main', '-l'], { cwd })
    const bin = lines(long.stdout).find((l) => l.endsWith('  data/sub/bin.dat'))
    expect(bin).toMatch(new RegExp(`^file +${BINARY.length}  bafk[a-z2-7]+  data/sub/bin\\.dat$`))
    const rec = lines(long.stdout).find((l) => l.endsWith('  config/train.json'))
    expect(rec).toMatch(/^record +\d+  bafy[a-z2-7]+  config\/train\.json$/)
    const prefix = await runCli(['ls', 'main~1', 'data/sub/'], { cwd })
    expect(lines(prefix.stdout)).toEqual(['data/sub/bin.dat', 'data/sub/deep/c.txt'])
  })

  it('diff shows field changes of records and a unified diff of text', async () => {
    const r = await runCli(['diff', 'main~1', 'main'], { cwd })
    expect(r.code, r.stderr).toBe(0)
    const out = lines(r.stdout)
    expect(out).toContain('M  config/train.json  (record, 21 B → 21 B)')
    expect(out).toContain('     lr: 0.01 → 0.02')
    expect(out).not.toContain('     epochs: 3 → 3')
    expect(out).toContain('M  data/a.txt  (file, 6 B → 18 B)')
    expect(out).toEqual(expect.arrayContaining(['     --- a/data/a.txt', '     +++ b/data/a.txt', '     @@ -1,1 +1,2 @@', '      hello', '     +hello again']))
    expect(out).toContain('A  data/new.txt  (file, 4 B)')
    expect(out).toContain('D  one/file.txt  (file, 12 B)')
    expect(out.at(-1)).toBe('1 added, 2 modified, 1 removed')
  })

  it('diff --stat lists paths only', async () => {
    const r = await runCli(['diff', 'main~1', 'main', '--stat'], { cwd })
    expect(r.code, r.stderr).toBe(0)
    expect(lines(r.stdout)).toEqual([
      'M  config/train.json  (record, 21 B → 21 B)',
      'M  data/a.txt  (file, 6 B → 18 B)',
      'A  data/new.txt  (file, 4 B)',
      'D  one/file.txt  (file, 12 B)',
      '1 added, 2 modified, 1 removed',
    ])
  })

  it('checkout rev -o dir restores an older version byte-exact', async () => {
    const out = join(dir, 'restore-v1')
    const r = await runCli(['checkout', 'main~1', '-o', out], { cwd })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain(`of ${c1} into ${out}`)
    expect(await filesUnder(out)).toEqual(['config/train.json', 'data/a.txt', 'data/sub/bin.dat', 'data/sub/deep/c.txt', 'metrics/m.json', 'one/file.txt'])
    for (const [path, hash] of v1Files) expect(sha256(await readFile(join(out, path))), path).toBe(hash)
    expect(JSON.parse(await readFile(join(out, 'config/train.json'), 'utf8'))).toEqual({ lr: 0.01, epochs: 3 })
    // Again into the same place: nothing differs, so nothing is refused.
    const again = await runCli(['checkout', 'main~1', '-o', out], { cwd })
    expect(again.code, again.stderr).toBe(0)
    expect(again.stdout).toContain('6 already up to date')
  })

  it('checkout rev path -o dir writes only that path (revision given as a CID prefix)', async () => {
    const out = join(dir, 'restore-sub')
    const r = await runCli(['checkout', c1.slice(0, 14), 'data/sub', '-o', out], { cwd })
    expect(r.code, r.stderr).toBe(0)
    expect(await filesUnder(out)).toEqual(['data/sub/bin.dat', 'data/sub/deep/c.txt'])
    expect((await readFile(join(out, 'data/sub/bin.dat'))).equals(BINARY)).toBe(true)
    const one = await runCli(['checkout', 'main~1', 'one/file.txt', '-o', out], { cwd })
    expect(one.code, one.stderr).toBe(0)
    expect(await readFile(join(out, 'one/file.txt'), 'utf8')).toBe('single file\n')
  })

  it('tag (lightweight and annotated) and tags/x resolve', async () => {
    const light = await runCli(['tag', 'v1', 'main~1'], { cwd })
    expect(light.code, light.stderr).toBe(0)
    expect(light.stdout).toContain(`tags/v1 → ${c1}`)
    const annotated = await runCli(['tag', 'v2', '-m', 'deployed to the beamline'], { cwd })
    expect(annotated.code, annotated.stderr).toBe(0)
    expect(annotated.stdout).toMatch(new RegExp(`tags/v2 → ${c2} \\(annotated, tag node baf`))
    expect((await runCli(['show', 'tags/v1'], { cwd })).stdout.startsWith(`commit ${c1}\n`)).toBe(true)
    // An annotated tag prints before its commit, as in git.
    const shownTag = (await runCli(['show', 'tags/v2'], { cwd })).stdout
    expect(shownTag.startsWith('tag v2\nTagger: ')).toBe(true)
    expect(shownTag).toContain(`    deployed to the beamline\n\ncommit ${c2}\n`)
    expect((await runCli(['show', 'v1'], { cwd })).stdout.startsWith(`commit ${c1}\n`)).toBe(true)
  })

  it('ref list, ref set, ref delete, and name@{1} still resolves after the delete', async () => {
    const set = await runCli(['ref', 'set', 'experiments/lr', 'main~1', '-m', 'try the old config'], { cwd })
    expect(set.code, set.stderr).toBe(0)
    expect(set.stdout).toContain(`experiments/lr: (new) → ${c1}`)
    const list = await runCli(['ref', 'list'], { cwd })
    const refs = lines(list.stdout)
    expect(refs).toContain(`${c1}  experiments/lr`)
    expect(refs).toContain(`${c2}  main`)
    expect(refs).toContain(`${c1}  tags/v1`)
    expect(refs.find((l) => l.endsWith('  tags/v2'))).toMatch(/^baf/)

    const del = await runCli(['ref', 'delete', 'experiments/lr', '-m', 'sweep finished'], { cwd })
    expect(del.code, del.stderr).toBe(0)
    expect(del.stdout).toContain(`deleted experiments/lr (was ${c1})`)
    expect((await runCli(['ref', 'list'], { cwd })).stdout).not.toContain('experiments/lr')
    const gone = await runCli(['show', 'experiments/lr'], { cwd })
    expect(gone.code).toBe(3)
    const before = await runCli(['show', 'experiments/lr@{1}'], { cwd })
    expect(before.code, before.stderr).toBe(0)
    expect(before.stdout.startsWith(`commit ${c1}\n`)).toBe(true)
  })

  it('reflog lists every value newest first, with who and why', async () => {
    const main = await runCli(['reflog', 'main'], { cwd })
    expect(main.code, main.stderr).toBe(0)
    const m = lines(main.stdout)
    expect(m).toHaveLength(2)
    expect(m[0]).toMatch(new RegExp(`^${c2.slice(0, 16)} main@\\{0\\} \\S+ Test <t@example.org>: commit: second run$`))
    expect(m[1]).toMatch(new RegExp(`^${c1.slice(0, 16)} main@\\{1\\} \\S+ Test <t@example.org>: commit: first run$`))
    const exp = lines((await runCli(['reflog', 'experiments/lr'], { cwd })).stdout)
    expect(exp).toHaveLength(2)
    expect(exp[0]).toMatch(/^\(deleted\) +experiments\/lr@\{0\} .*: sweep finished$/)
    expect(exp[1]).toMatch(/experiments\/lr@\{1\} .*: try the old config$/)
  })

  it('fsck says ok and exits 0', async () => {
    const r = await runCli(['fsck'], { cwd })
    expect(r.code, r.stderr).toBe(0)
    expect(lines(r.stdout).at(-1)).toBe('ok')
    expect(r.stdout).toMatch(/checked \d+ roots: 2 commits, \d+ tree nodes, 3 records, \d+ files/)
  })
})

describe('--json on every command', { timeout: 20_000 }, () => {
  const isCid = (s: unknown): boolean => typeof s === 'string' && /^baf[a-z2-7]{50,}$/.test(s)

  it('init', async () => {
    const other = join(dir, 'other')
    await mkdir(other)
    const { code, json } = await runJson(['init'], { cwd: other })
    expect(code).toBe(0)
    expect(json).toEqual({ location: join(other, '.pedigree') })
  })

  it('commit, with a record from stdin as its only input', async () => {
    // Nothing else on the command line: stdin must reach --record, not be taken for an argument.
    const other = join(dir, 'other')
    const { code, json, stderr } = await runJson(['commit', '--record', 'metrics/7.json=-', '-m', 'from a pipe'], { cwd: other, input: '{"loss": 0.12}\n' })
    expect(code, stderr).toBe(0)
    expect(json).toMatchObject({ ref: 'main', parent: null, changes: { added: 1, modified: 0, removed: 0 } })
    expect(json.cid).toMatch(/^baf/)
    const shown = await runCli(['show', 'main:metrics/7.json'], { cwd: other })
    expect(JSON.parse(shown.stdout)).toEqual({ loss: 0.12 })
  })

  it('log', async () => {
    const { code, json } = await runJson(['log'], { cwd })
    expect(code).toBe(0)
    expect(json.map((e: { cid: string }) => e.cid)).toEqual([c2, c1])
    expect(json[0]).toMatchObject({ message: 'second run', author: { name: 'Test', email: 't@example.org' }, parents: [{ '/': c1 }] })
    expect(json[1]).toMatchObject({ message: 'first run', parents: [], meta: { site: 'aps', tags: ['a', 1] } })
    expect(isCid(json[0].tree['/'])).toBe(true)
    expect(new Date(json[0].date).getTime()).toBe(json[0].time)
    expect((await runJson(['log', '-n', '1'], { cwd })).json).toHaveLength(1)
  })

  it('show: a commit, a record, a file', async () => {
    const commit = await runJson(['show', 'main'], { cwd })
    expect(commit.code).toBe(0)
    expect(commit.json).toMatchObject({ type: 'commit', cid: c2, message: 'second run', counts: { added: 1, modified: 2, removed: 1 }, truncated: false })
    const changes = commit.json.changes as { type: string; path: string; before?: { cid: string }; after?: { cid: string } }[]
    expect(changes.map((c) => `${c.type} ${c.path}`)).toEqual(['modified config/train.json', 'modified data/a.txt', 'added data/new.txt', 'removed one/file.txt'])
    expect(isCid(changes[1]!.before!.cid) && isCid(changes[1]!.after!.cid)).toBe(true)

    const record = await runJson(['show', 'main~1:config/train.json'], { cwd })
    expect(record.json).toMatchObject({ type: 'record', path: 'config/train.json', commit: c1, value: { lr: 0.01, epochs: 3 } })
    expect(isCid(record.json.cid)).toBe(true)

    const file = await runJson(['show', 'main:data/sub/bin.dat'], { cwd })
    expect(file.json).toMatchObject({ type: 'file', path: 'data/sub/bin.dat', commit: c2, size: BINARY.length })
    expect(file.json.cid).toMatch(/^bafk/)
  })

  it('ls', async () => {
    const { code, json } = await runJson(['ls', 'main', 'data/'], { cwd })
    expect(code).toBe(0)
    expect(json.map((e: { path: string }) => e.path)).toEqual(['data/a.txt', 'data/new.txt', 'data/sub/bin.dat', 'data/sub/deep/c.txt'])
    expect(json[2]).toMatchObject({ kind: 'file', size: BINARY.length })
    for (const e of json) expect(isCid(e.cid)).toBe(true)
  })

  it('diff and diff --stat', async () => {
    const { code, json } = await runJson(['diff', 'main~1', 'main'], { cwd })
    expect(code).toBe(0)
    const config = json.find((d: { path: string }) => d.path === 'config/train.json')
    expect(config).toMatchObject({ type: 'modified', kind: 'record', fields: [{ field: 'lr', before: 0.01, after: 0.02 }] })
    expect(isCid(config.before.cid) && isCid(config.after.cid)).toBe(true)
    const text = json.find((d: { path: string }) => d.path === 'data/a.txt')
    expect(text.patch).toContain('+hello again')
    const stat = await runJson(['diff', 'main~1', 'main', '--stat'], { cwd })
    expect(stat.json.map((d: { type: string; path: string }) => `${d.type} ${d.path}`)).toEqual([
      'modified config/train.json',
      'modified data/a.txt',
      'added data/new.txt',
      'removed one/file.txt',
    ])
    expect(stat.json.every((d: { fields?: unknown; patch?: unknown }) => d.fields === undefined && d.patch === undefined)).toBe(true)
  })

  it('checkout', async () => {
    const out = join(dir, 'json-checkout')
    const { code, json } = await runJson(['checkout', 'main', 'data/sub', '-o', out], { cwd })
    expect(code).toBe(0)
    expect(json).toMatchObject({ commit: c2, outDir: out, unchanged: 0 })
    expect(json.written.map((w: { path: string }) => w.path)).toEqual(['data/sub/bin.dat', 'data/sub/deep/c.txt'])
    expect(json.written[0]).toMatchObject({ kind: 'file', size: BINARY.length })
    expect(isCid(json.written[0].cid)).toBe(true)
  })

  it('tag, ref set, ref list, ref delete, reflog', async () => {
    const tag = await runJson(['tag', 'v3', 'main', '-m', 'json tag'], { cwd })
    expect(tag.code).toBe(0)
    expect(tag.json).toMatchObject({ ref: 'tags/v3', commit: c2, annotated: true, previous: null })
    expect(isCid(tag.json.cid) && tag.json.cid !== c2).toBe(true)

    const set = await runJson(['ref', 'set', 'scratch', 'main~1'], { cwd })
    expect(set.json).toEqual({ ref: 'scratch', old: null, new: c1 })
    const list = await runJson(['ref', 'list'], { cwd })
    expect(list.json).toEqual(expect.arrayContaining([{ name: 'main', cid: c2 }, { name: 'scratch', cid: c1 }]))
    expect(list.json.every((r: { cid: string }) => isCid(r.cid))).toBe(true)
    const del = await runJson(['ref', 'delete', 'scratch'], { cwd })
    expect(del.json).toEqual({ ref: 'scratch', old: c1 })

    const reflog = await runJson(['reflog', 'main'], { cwd })
    expect(reflog.json).toHaveLength(2)
    expect(reflog.json[0]).toMatchObject({ ref: 'main', index: 0, old: c1, new: c2, who: { name: 'Test', email: 't@example.org' }, message: 'commit: second run' })
    expect(reflog.json[1]).toMatchObject({ index: 1, old: null, new: c1, message: 'commit: first run' })
    const scratch = await runJson(['reflog', 'scratch'], { cwd })
    expect(scratch.json.map((e: { new: string | null }) => e.new)).toEqual([null, c1])
  })

  it('fsck', async () => {
    const { code, json } = await runJson(['fsck'], { cwd })
    expect(code).toBe(0)
    expect(json).toMatchObject({ ok: true, problems: [], checked: { commits: 2, records: 3 } })
  })
})
