import { afterAll, describe, expect, it } from 'vitest'
import { Repository } from '../../src/repo/repository.js'
import { useS3 } from '../support/s3.js'
import { collect } from './fixture.js'

const s3 = await useS3()

if (!s3.ok) {
  describe('S3 store: several writers committing at once', () => {
    it.skip(`skipped: ${s3.reason}`, () => {})
  })
} else {
  const server = s3.server
  afterAll(() => server.stop())
  const bucket = await server.bucket('writers')

  describe('S3 store: several writers committing at once (separate clients, as separate machines would be)', () => {
    it('4 writers x 5 commits to one ref: all 20 commits and records are in the history, none lost', { timeout: 180_000 }, async () => {
      const url = `s3://${bucket}/writers`
      const open = { s3: server.options }
      await (await Repository.init(url, open)).close()
      const writers = await Promise.all(Array.from({ length: 4 }, () => Repository.open(url, open)))
      try {
        const results = await Promise.all(
          writers.map(async (repo, w) => {
            const out = []
            for (let i = 0; i < 5; i++) {
              out.push(
                await repo.commit({
                  ref: 'main',
                  author: { name: `writer-${w}` },
                  message: `writer ${w} commit ${i}`,
                  edits: [{ type: 'record', path: `runs/w${w}/${i}.json`, value: { writer: w, i } }],
                }),
              )
            }
            return out
          }),
        )
        const reader = await Repository.open(url, open)
        try {
          const log = await collect(reader.log({ from: 'main' }))
          expect(log).toHaveLength(20)
          const messages = log.map((e) => e.commit.message).sort()
          expect(messages).toEqual(Array.from({ length: 20 }, (_, k) => `writer ${Math.floor(k / 5)} commit ${k % 5}`).sort())
          // Every commit each writer was told about is in the history, and every record is in the tree.
          const inLog = new Set(log.map((e) => e.cid.toString()))
          for (const r of results.flat()) expect(inLog.has(r.cid.toString())).toBe(true)
          const paths = (await collect(reader.ls('main'))).map((e) => e.path).sort()
          expect(paths).toEqual(Array.from({ length: 20 }, (_, k) => `runs/w${Math.floor(k / 5)}/${k % 5}.json`).sort())
          expect(await reader.reflog('main')).toHaveLength(20)
          expect((await reader.fsck()).ok).toBe(true)
        } finally {
          await reader.close()
        }
      } finally {
        for (const w of writers) await w.close()
      }
    })

    it('a long-lived writer sees what another process committed after it opened the store', { timeout: 120_000 }, async () => {
      const url = `s3://${bucket}/fresh`
      const open = { s3: server.options }
      await (await Repository.init(url, open)).close()
      const a = await Repository.open(url, open)
      try {
        await a.commit({ ref: 'a', author: { name: 'a' }, message: 'a starts', edits: [{ type: 'record', path: 'a.json', value: { a: 1 } }] })
        // Another process commits a calibration after a has loaded the store's packs.
        const b = await Repository.open(url, open)
        const calib = await b.commit({ ref: 'main', author: { name: 'b' }, message: 'calibration', edits: [{ type: 'record', path: 'calib.json', value: { gain: 2 } }] })
        const calibRecord = (await b.resolveEntry('main:calib.json')).entry.cid
        await b.close()
        // a links to it (a dangling link would be refused) and reads it.
        const run = await a.commit({ ref: 'a', author: { name: 'a' }, message: 'run', edits: [{ type: 'record', path: 'run.json', value: { used: calibRecord } }] })
        expect(run.cid).toBeDefined()
        expect(await a.readNode(calibRecord)).toEqual({ gain: 2 })
        expect((await a.readCommit(calib.cid)).message).toBe('calibration')
      } finally {
        await a.close()
      }
    })
  })
}
