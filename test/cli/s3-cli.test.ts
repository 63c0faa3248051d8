import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { pseudoRandom } from '../helpers/random.js'
import { useS3 } from '../support/s3.js'
import { removeDir, runCli, runJson, tempDir } from './run-cli.js'

const s3 = await useS3()
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

if (!s3.ok) {
  describe('pedigree on an S3 store', () => {
    it.skip(`skipped: ${s3.reason}`, () => {})
  })
} else {
  const server = s3.server
  const bucket = await server.bucket('cli')
  const dir = await tempDir('s3')
  const cwd = join(dir, 'work')
  const env = server.env
  const url = `s3://${bucket}/beamline7`
  const weights = pseudoRandom(5, 700_000)
  afterAll(async () => {
    await server.stop()
    await removeDir(dir)
  })

  describe('pedigree on an S3 store (Ceph RGW), through the CLI', { timeout: 120_000 }, () => {
    let c1 = ''
    let c2 = ''

    it('init --store s3://… creates the store in the bucket and a .pedigree that points at it', async () => {
      await mkdir(join(cwd, 'model'), { recursive: true })
      const r = await runJson(['init', '--store', url], { cwd, env })
      expect(r.code, r.stderr).toBe(0)
      expect(r.json).toEqual({ location: join(cwd, '.pedigree'), store: `${url}/` })
      expect(existsSync(join(cwd, '.pedigree', 'FORMAT'))).toBe(true)
      // A second init of the same bucket prefix is refused (exit 4) and changes nothing.
      const again = await runCli(['init', '--repo', url], { cwd: dir, env })
      expect(again.code).toBe(4)
      expect(again.stderr).toContain('already exists')
    })

    it('commit, log and checkout work against the bucket, byte-exact', async () => {
      await writeFile(join(cwd, 'model', 'weights.bin'), weights)
      await writeFile(join(cwd, 'train.json'), '{"lr": 0.01}')
      const first = await runJson(['commit', 'model', '--record', 'config/train.json=train.json', '-m', 'first run'], { cwd, env })
      expect(first.code, first.stderr).toBe(0)
      c1 = first.json.cid
      await writeFile(join(cwd, 'train.json'), '{"lr": 0.02}')
      const second = await runJson(['commit', '--record', 'config/train.json=train.json', '-m', 'second run'], { cwd, env })
      expect(second.code, second.stderr).toBe(0)
      c2 = second.json.cid

      const log = await runCli(['log', '--oneline'], { cwd, env })
      expect(log.code, log.stderr).toBe(0)
      expect(log.stdout).toContain('second run')
      expect(log.stdout).toContain('first run')
      expect(log.stdout.indexOf('second run')).toBeLessThan(log.stdout.indexOf('first run'))

      const out = join(dir, 'out')
      const co = await runCli(['checkout', 'main~1', '-o', out], { cwd, env })
      expect(co.code, co.stderr).toBe(0)
      expect(sha256(await readFile(join(out, 'model', 'weights.bin')))).toBe(sha256(weights))
      expect(JSON.parse(await readFile(join(out, 'config', 'train.json'), 'utf8'))).toEqual({ lr: 0.01 })
    })

    it('--repo s3://… (and PEDIGREE_REPO) reach the same store from anywhere; fsck is clean', async () => {
      const log = await runJson(['log', '--repo', url], { cwd: dir, env })
      expect(log.code, log.stderr).toBe(0)
      expect(log.json.map((e: { cid: string }) => e.cid)).toEqual([c2, c1])
      const fsck = await runJson(['fsck'], { cwd: dir, env: { ...env, PEDIGREE_REPO: url } })
      expect(fsck.code, JSON.stringify(fsck.json)).toBe(0)
      const reflog = await runJson(['reflog', 'main', '--repo', url], { cwd: dir, env })
      expect(reflog.json).toHaveLength(2)
    })

    it('wrong credentials: exit 7 naming the bucket, and the ref is unchanged', async () => {
      const r = await runJson(['commit', '--record', 'x.json=train.json', '-m', 'denied'], { cwd, env: { ...env, AWS_SECRET_ACCESS_KEY: 'wrong' } })
      expect(r.code).toBe(7)
      expect(r.json.error.code).toBe('ERR_FORBIDDEN')
      expect(r.json.error.message).toContain(bucket)
      const log = await runJson(['log'], { cwd, env })
      expect(log.json[0].cid).toBe(c2)
    })

    it('a missing bucket: exit 3 naming it; an unreachable endpoint: exit 8', async () => {
      const missing = await runCli(['log', '--repo', 's3://pedigree-no-such-bucket-cli/x'], { cwd: dir, env })
      expect(missing.code).toBe(3)
      expect(missing.stderr).toContain('pedigree-no-such-bucket-cli')
      // init --store into a missing bucket leaves no .pedigree behind.
      const elsewhere = join(dir, 'elsewhere')
      await mkdir(elsewhere)
      const init = await runJson(['init', '--store', 's3://pedigree-no-such-bucket-cli/x'], { cwd: elsewhere, env })
      expect(init.code).toBe(3)
      expect(init.json.error.data).toMatchObject({ bucket: 'pedigree-no-such-bucket-cli', operation: 'PutObject' })
      expect(existsSync(join(elsewhere, '.pedigree'))).toBe(false)
      const down = await runCli(['log'], { cwd, env: { ...env, AWS_ENDPOINT_URL: 'http://127.0.0.1:9' } })
      expect(down.code).toBe(8)
      expect(down.stderr).toContain('127.0.0.1:9')
    })

    it('clone s3://… into a local store gives the same commits', async () => {
      const target = join(dir, 'copy')
      const r = await runCli(['clone', url, target], { cwd: dir, env })
      expect(r.code, r.stderr).toBe(0)
      const log = await runJson(['log'], { cwd: target, env })
      expect(log.json.map((e: { cid: string }) => e.cid)).toEqual([c2, c1])
    })

    it('4 processes committing to one ref of the bucket at once: every commit lands, none lost', async () => {
      const shared = `s3://${bucket}/writers`
      const init = await runCli(['init', '--repo', shared], { cwd: dir, env })
      expect(init.code, init.stderr).toBe(0)
      const writer = async (w: number): Promise<string[]> => {
        const cids: string[] = []
        for (let i = 0; i < 3; i++) {
          const r = await runJson(['commit', '--repo', shared, '--record', `runs/w${w}-${i}.json=-`, '-m', `w${w} c${i}`], { cwd: dir, env, input: JSON.stringify({ w, i }) })
          expect(r.code, JSON.stringify(r.json)).toBe(0)
          cids.push(r.json.cid)
        }
        return cids
      }
      const done = (await Promise.all([0, 1, 2, 3].map(writer))).flat()
      const log = await runJson(['log', '--repo', shared], { cwd: dir, env })
      expect(log.json).toHaveLength(12)
      expect(new Set(log.json.map((e: { cid: string }) => e.cid))).toEqual(new Set(done))
      const reflog = await runJson(['reflog', 'main', '--repo', shared], { cwd: dir, env })
      expect(reflog.json).toHaveLength(12)
    })

    it('push from the clone back to s3://… moves the bucket\'s ref', async () => {
      const target = join(dir, 'copy')
      await writeFile(join(target, 'eval.json'), '{"acc": 0.93}')
      const c3 = await runJson(['commit', '--record', 'eval.json=eval.json', '-m', 'evaluation'], { cwd: target, env })
      expect(c3.code, c3.stderr).toBe(0)
      const pushed = await runJson(['push'], { cwd: target, env })
      expect(pushed.code, pushed.stderr).toBe(0)
      const log = await runJson(['log', '--repo', url], { cwd: dir, env })
      expect(log.json.map((e: { cid: string }) => e.cid)).toEqual([c3.json.cid, c2, c1])
    })
  })
}
