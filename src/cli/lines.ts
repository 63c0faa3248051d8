import type { Readable } from 'node:stream'

/**
 * Lines of a text stream, read on demand. Unlike readline's iterator, nothing is lost if
 * the consumer starts late or pauses for long (the stream simply stays paused), and memory
 * holds one chunk plus one partial line.
 */
export async function* readLines(input: Readable): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8')
  let rest = ''
  for await (const chunk of input as AsyncIterable<Uint8Array | string>) {
    rest += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true })
    let nl: number
    while ((nl = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, nl)
      rest = rest.slice(nl + 1)
      yield line.endsWith('\r') ? line.slice(0, -1) : line
    }
  }
  rest += decoder.decode()
  if (rest.length > 0) yield rest.endsWith('\r') ? rest.slice(0, -1) : rest
}
