import { mkdir, stat } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { InvalidInputError } from '../errors.js'

/**
 * Create the folder `path` and every missing folder above it, like `mkdir -p`, with errors
 * that name what is wrong (a file in the way, a folder that cannot be written).
 *
 * Why not `fs.mkdir(path, { recursive: true })`: on Node 20 it never returns for a path under
 * a file system that refuses new folders without saying so (`/proc/nope`: mkdir answers
 * ENOENT, its parent EEXIST, and it tries again forever at 100% CPU), and a file in the way
 * comes out as a bare EEXIST or ENOTDIR. Here each level is created once, from the nearest
 * folder that exists.
 *
 * @example
 * await makeDirs('/data/restore/model')
 */
export async function makeDirs(path: string, what = 'folder'): Promise<void> {
  const missing: string[] = []
  let dir = resolve(path)
  for (;;) {
    const info = await stat(dir).catch((e: NodeJS.ErrnoException) => {
      // ENOTDIR: a file above it; going up finds it and says so.
      if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return undefined
      throw cannotCreate(path, what, e.message, e)
    })
    if (info) {
      if (!info.isDirectory()) throw cannotCreate(path, what, `${dir} is a file, not a folder`)
      break
    }
    missing.push(dir)
    const up = dirname(dir)
    if (up === dir) break
    dir = up
  }
  for (const d of missing.reverse()) {
    await mkdir(d).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'EEXIST') return
      throw cannotCreate(path, what, e.code === 'EACCES' || e.code === 'EPERM' ? `no permission to create ${d}` : e.code === 'ENOENT' ? `${dirname(d)} does not accept new folders` : e.message, e)
    })
  }
}

function cannotCreate(path: string, what: string, why: string, cause?: unknown): InvalidInputError {
  return new InvalidInputError(`cannot create the ${what} ${path}: ${why}`, { path }, cause === undefined ? undefined : { cause })
}
