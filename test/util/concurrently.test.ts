import { describe, expect, it } from 'vitest'
import { forEachConcurrently } from '../../src/util/concurrently.js'

describe('forEachConcurrently', () => {
  it('runs every item once, never more than the limit at a time', async () => {
    let running = 0
    let most = 0
    const done: number[] = []
    await forEachConcurrently([...Array(20).keys()], 3, async (n) => {
      running++
      most = Math.max(most, running)
      await new Promise((r) => setTimeout(r, (n * 7) % 5))
      done.push(n)
      running--
    })
    expect(done.sort((a, b) => a - b)).toEqual([...Array(20).keys()])
    expect(most).toBe(3)
  })
  it('rejects with the first failure after the calls in flight have settled, starting no new ones', async () => {
    const started: number[] = []
    let settled = 0
    const run = forEachConcurrently([0, 1, 2, 3, 4, 5], 2, async (n) => {
      started.push(n)
      await new Promise((r) => setTimeout(r, n === 1 ? 1 : 10))
      settled++
      if (n === 1) throw new Error('item 1 failed')
    })
    await expect(run).rejects.toThrow('item 1 failed')
    expect(settled).toBe(started.length)
    expect(started.length).toBeLessThan(6)
  })
})
