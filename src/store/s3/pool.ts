/**
 * Run `fn` over `items` with at most `limit` calls in flight (requests to an object store are
 * worth overlapping, but not without bound). Rejects with the first failure, after the calls
 * already started have settled.
 */
export async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  let failure: { error: unknown } | undefined
  const worker = async (): Promise<void> => {
    while (next < items.length && !failure) {
      const item = items[next++]!
      try {
        await fn(item)
      } catch (e) {
        failure ??= { error: e }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  if (failure) throw failure.error
}
