import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { pseudoRandom } from '../helpers/random.js'
import { removeDir, runCli, runJson, tempDir } from '../cli/run-cli.js'
import { useS3 } from '../support/s3.js'
import { SEED, expectIntact, iterations, randomFor, sha256, where } from './harness.js'
import { KillTally, expectIntactS3, historyS3, killPoints, movesS3, packsS3, runAndKillS3, tap, timeAfterConnect, type Tap } from './s3-harness.js'

/**
 * The crash tests of commit-ingest.test.ts and sync.test.ts, against a store in S3 (Ceph's
 * RADOS Gateway, real, through the real CLI): `pedigree commit` of a multi-MiB file into a
 * bucket store, `pedigree push` from a local store to an s3:// remote, and `pedigree ingest`
 * into a bucket store are killed with SIGKILL at random points, counted from the process's
 * first connection to S3 (s3-harness.ts), one in each slice of the span an uncut run takes
 * (killPoints). After each kill fsck of the bucket store is clean (every ref and reflog entry
 * reaches a complete DAG in packs whose index exists), each ref holds its old or its new
 * value, and the same command run again completes it once.
 *
 * PEDIGREE_CRASH_SEED replays a run; PEDIGREE_CRASH_ITERATIONS sets the kills per test.
 */

const s3 = await useS3()

if (!s3.ok) {
  describe('killed while writing to S3', () => {
    it.skip(`skipped: ${s3.reason}`, () => {})
  })
} else {
  const server = s3.server
  const env = server.env
  const bucket = await server.bucket('crash')
  const dir = await tempDir('crash-s3')
  const relay: Tap = await tap(server.endpoint)
  afterAll(async () => {
    await relay.close()
    await server.stop()
    await removeDir(dir)
  })

  const packs = (url: string): ReturnType<typeof packsS3> => packsS3(url, server.options)
  /** PEDIGREE_CRASH_VERBOSE=1: where the kills landed. */
  const summary = (label: string, tally: KillTally, whole: number, more = ''): void => {
    if (process.env.PEDIGREE_CRASH_VERBOSE) process.stderr.write(`${label} (uncut run: ${whole} ms after its first connection): ${tally}${more}\n`)
  }

  const BIG = 24 * 1024 * 1024
  const KILLS = iterations(6)

  describe('killed commit into an S3 store (Ceph RGW)', () => {
    it(`of a ${BIG >> 20} MiB file and a record: fsck clean, old or new version byte-exact, the re-run commits it once (seed ${SEED})`, { timeout: 60_000 + 15_000 * KILLS }, async () => {
      const rand = randomFor('s3 commit')
      const url = `s3://${bucket}/commit`
      const cwd = join(dir, 'commit')
      await mkdir(cwd)
      // The store lives in the bucket; .pedigree here only points at it.
      const init = await runCli(['init', '--store', url], { cwd, env })
      expect(init.code, init.stderr).toBe(0)
      const big = join(cwd, 'big.bin')
      const rec = join(cwd, 'run.json')
      const args = (k: number): string[] => ['commit', '-m', `checkpoint v${k}`, `model/big.bin=${big}`, '--record', `runs/${k}.json=${rec}`]
      const version = async (k: number): Promise<string> => {
        const bytes = pseudoRandom(SEED + 1000 * k + 1, BIG)
        await writeFile(big, bytes)
        await writeFile(rec, JSON.stringify({ run: k, loss: 1 / (k + 1) }))
        return sha256(bytes)
      }
      const stored = async (): Promise<string | undefined> => {
        const r = await runCli(['show', 'main:model/big.bin', '--repo', url], { cwd: dir, env })
        return r.code === 0 ? sha256(r.stdoutBytes) : undefined
      }

      // Version 0, not killed: how long a commit works against S3 sets the range of kill points.
      let previous = await version(0)
      const { result, ms: whole } = await timeAfterConnect(args(0), cwd, env, relay)
      expect(result.code, result.stderr).toBe(0)
      expect(await stored()).toBe(previous)

      const tally = new KillTally()
      const points = killPoints(rand, KILLS, 0, whole)
      for (let k = 1; k <= KILLS; k++) {
        const next = await version(k)
        const packsBefore = await packs(url)
        const killed = await runAndKillS3(args(k), cwd, env, relay, points[k - 1]!)
        const at = where('s3 commit', k, killed)
        const refs = await expectIntactS3(url, dir, env, at)
        // The ref moved entirely or not at all: the file reads back as one version, byte-exact.
        const now = await stored()
        expect([previous, next], at).toContain(now)
        const landed = now === next
        const top = (await historyS3(url, 'main', dir, env))[0]!
        expect(top.cid, at).toBe(refs.main)
        expect(top.message, at).toBe(landed ? `checkpoint v${k}` : `checkpoint v${k - 1}`)
        tally.add(killed, packsBefore, await packs(url), landed)

        // Run it again (through the .pedigree pointer, as the user would): it completes, or finds nothing to do.
        const again = await runJson(args(k), { cwd, env })
        if (landed) expect(again.json.error?.code, at).toBe('ERR_NOTHING_TO_COMMIT')
        else expect(again.code, `${at}: ${again.stderr}`).toBe(0)
        expect(await stored(), at).toBe(next)
        const messages = (await historyS3(url, 'main', dir, env)).map((c) => c.message)
        expect(messages.filter((m) => m === `checkpoint v${k}`), at).toHaveLength(1)
        expect(messages, at).toHaveLength(k + 1)
        previous = next
      }
      await expectIntactS3(url, dir, env, 'after every kill')
      summary('s3 commit', tally, whole)
      // Kill points fall while the command works against S3; most land before its ref moves.
      expect(tally.counts.beforePacks + tally.counts.packsNotRef, `only ${tally}`).toBeGreaterThan(0)
    })
  })

  describe('killed ingest into an S3 store (Ceph RGW)', () => {
    it(`of JSON Lines in batches: fsck clean, whole batches only, the re-run skips them and adds the rest once (seed ${SEED})`, { timeout: 60_000 + 20_000 * KILLS }, async () => {
      const rand = randomFor('s3 ingest')
      // No local folder at all: --repo s3://… names the store.
      const url = `s3://${bucket}/ingest`
      const cwd = join(dir, 'ingest')
      await mkdir(cwd)
      const init = await runCli(['init', '--repo', url], { cwd, env })
      expect(init.code, init.stderr).toBe(0)
      const LINES = 1200
      const BATCH = 60
      const BATCHES = LINES / BATCH
      const input = async (k: number): Promise<string> => {
        const file = join(cwd, `tasks-${k}.jsonl`)
        const lines: string[] = []
        for (let i = 0; i < LINES; i++) lines.push(JSON.stringify({ task_id: i, workflow_id: `wf-${k}`, loss: (i % 97) / 97, site: 'aps' }))
        await writeFile(file, lines.join('\n') + '\n')
        return file
      }
      const args = (k: number, file: string): string[] => ['ingest', '--repo', url, '-b', 'main', '-m', `ingest-${k}`, '--path-template', 'tasks/{workflow_id}/{task_id}.json', '--batch', String(BATCH), file]
      /** The batches of input k in the history (oldest first), and its records in the tree. */
      const landed = async (k: number): Promise<{ batches: string[]; records: number }> => {
        const ls = await runJson<{ path: string }[]>(['ls', 'main', `tasks/wf-${k}/`, '--repo', url], { cwd, env })
        expect(ls.code, ls.stderr).toBe(0)
        return {
          batches: (await historyS3(url, 'main', cwd, env)).map((c) => c.message).filter((m) => m.startsWith(`ingest-${k}:`)).reverse(),
          records: ls.json.length,
        }
      }
      const batchMessages = (k: number, count: number): string[] =>
        Array.from({ length: count }, (_, b) => `ingest-${k}: ${BATCH} records (lines ${b * BATCH + 1}–${(b + 1) * BATCH})`)

      const { result: first, ms: whole } = await timeAfterConnect(args(0, await input(0)), cwd, env, relay)
      expect(first.code, first.stderr).toBe(0)
      expect((await landed(0)).batches).toEqual(batchMessages(0, BATCHES))

      const tally = new KillTally()
      const partial: number[] = []
      let commits = BATCHES
      const points = killPoints(rand, KILLS, 0, whole)
      for (let k = 1; k <= KILLS; k++) {
        const file = await input(k)
        const packsBefore = await packs(url)
        const killed = await runAndKillS3(args(k, file), cwd, env, relay, points[k - 1]!)
        const at = where('s3 ingest', k, killed)
        await expectIntactS3(url, cwd, env, at)
        // Each batch is one commit: what landed is a whole number of batches, in order.
        const done = await landed(k)
        expect(done.batches, at).toEqual(batchMessages(k, done.batches.length))
        expect(done.records, at).toBe(done.batches.length * BATCH)
        tally.add(killed, packsBefore, await packs(url), done.batches.length === BATCHES)
        if (killed.killed) partial.push(done.batches.length)

        // The same ingest again resumes: the committed batches are skipped (and said to be), the rest added once.
        const again = await runJson<{ records: number; commits: unknown[]; skipped: { records: number }[] }>(args(k, file), { cwd, env })
        expect(again.code, `${at}: ${again.stderr}`).toBe(0)
        expect(again.json.skipped, at).toHaveLength(done.batches.length)
        expect(again.json.commits, at).toHaveLength(BATCHES - done.batches.length)
        expect(again.json.records, at).toBe((BATCHES - done.batches.length) * BATCH)
        const after = await landed(k)
        expect(after.batches, at).toEqual(batchMessages(k, BATCHES))
        expect(after.records, at).toBe(LINES)
        // No commit twice: the history grew by exactly one commit per batch of this input.
        commits += BATCHES
        expect(await historyS3(url, 'main', cwd, env), at).toHaveLength(commits)
      }
      await expectIntactS3(url, cwd, env, 'after every kill')
      summary('s3 ingest', tally, whole, `; batches (of ${BATCHES}) landed at each kill: ${partial.join(', ')}`)
      expect(partial.filter((b) => b < BATCHES).length, `only ${tally}`).toBeGreaterThan(0)
    })
  })

  describe('killed push to an s3:// remote (Ceph RGW)', () => {
    const FILE = 8 * 1024 * 1024
    const SMALL_FILES = 300
    const ROUNDS = iterations(6)
    it(`from a local store: fsck of both clean after every kill, the remote ref old or new, the re-run lands exactly the local value, the remote ref moved once a round (seed ${SEED})`, { timeout: 60_000 + 20_000 * ROUNDS }, async () => {
      const rand = randomFor('s3 push')
      const url = `s3://${bucket}/remote`
      const cwd = join(dir, 'local')
      expect((await runCli(['init', cwd], { cwd: dir, env })).code).toBe(0)
      const init = await runCli(['init', '--repo', url], { cwd: dir, env })
      expect(init.code, init.stderr).toBe(0)
      expect((await runCli(['remote', 'add', 'origin', url], { cwd, env })).code).toBe(0)
      const args = ['push', 'origin', 'main']

      const heads: string[] = []
      /** New work in the local store, one commit (a file of fresh bytes and a few hundred small files); its CID. */
      const grow = async (k: number): Promise<string> => {
        const work = join(cwd, `work-${k}`)
        await mkdir(join(work, 'tasks'), { recursive: true })
        await writeFile(join(work, 'weights.bin'), pseudoRandom(SEED + 7919 * k + 1, FILE))
        for (let i = 0; i < SMALL_FILES; i++) await writeFile(join(work, 'tasks', `${i}.json`), JSON.stringify({ task_id: i, round: k, loss: (i % 89) / 89 }))
        const r = await runJson<{ cid: string }>(['commit', '-m', `round ${k}`, `rounds/${k}=${work}`], { cwd, env })
        expect(r.code, r.stderr).toBe(0)
        heads.push(r.json.cid)
        return r.json.cid
      }
      /** After a push completed: the remote's main moved once per round so far, to each head in turn. */
      const expectMovedOncePerRound = async (at: string): Promise<void> => {
        expect(await movesS3(url, 'main', cwd, env), `${at}: the remote's reflog of main`).toEqual(heads)
      }

      // Rounds 0 and 1, not killed. The first push finds an empty remote, later ones a remote
      // with packs to read and a ref to move: round 1's push sets the range of kill points.
      await grow(0)
      const first = await runCli(args, { cwd, env })
      expect(first.code, first.stderr).toBe(0)
      await grow(1)
      const { result, ms: whole } = await timeAfterConnect(args, cwd, env, relay)
      expect(result.code, result.stderr).toBe(0)
      await expectMovedOncePerRound('rounds 0 and 1')

      const tally = new KillTally()
      const points = killPoints(rand, ROUNDS, 0, whole)
      for (let k = 2; k < 2 + ROUNDS; k++) {
        const before = heads.at(-1)
        const head = await grow(k)
        const packsBefore = await packs(url)
        const killed = await runAndKillS3(args, cwd, env, relay, points[k - 2]!)
        const at = where('s3 push', k, killed)
        const local = await expectIntact(cwd, `${at}, pushing store`)
        const remote = await expectIntactS3(url, cwd, env, `${at}, the S3 remote`)
        expect([before, head], at).toContain(remote.main)
        expect([before, head], at).toContain(local['remotes/origin/main'])
        expect(local.main, at).toBe(head)
        tally.add(killed, packsBefore, await packs(url), remote.main === head)

        const again = await runCli(args, { cwd, env })
        expect(again.code, `${at}, the re-run: ${again.stderr}`).toBe(0)
        const after = await expectIntactS3(url, cwd, env, `${at}, the S3 remote after the re-run`)
        expect(after, at).toEqual({ main: head })
        expect((await expectIntact(cwd, `${at}, pushing store after the re-run`))['remotes/origin/main'], at).toBe(head)
        await expectMovedOncePerRound(at)
      }
      summary('s3 push', tally, whole)
      expect(tally.counts.beforePacks + tally.counts.packsNotRef, `only ${tally}`).toBeGreaterThan(0)
    })
  })
}
