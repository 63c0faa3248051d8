/**
 * Run `fn` on every item with at most `limit` calls in flight, in order of start. Resolves when
 * all have finished; rejects with the first failure, after the calls already running have
 * settled (so none is left writing into shared state after the caller has moved on).
 *
 * @example
 * await forEachConcurrently(slices, 4, async (slice) => answers.push(await remote.hasMany(slice)))
 */
export async function forEachConcurrently<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0
  let failure: { e: unknown } | undefined
  const worker = async (): Promise<void> => {
    while (next < items.length && !failure) {
      const i = next++
      try {
        await fn(items[i]!, i)
      } catch (e) {
        failure ??= { e }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker))
  if (failure) throw failure.e
}
