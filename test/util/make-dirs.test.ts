import { existsSync } from 'node:fs'
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { InvalidInputError } from '../../src/errors.js'
import { makeDirs } from '../../src/util/make-dirs.js'

describe('makeDirs', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pedigree-dirs-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('creates every missing level, and accepts a folder that exists', async () => {
    const deep = join(dir, 'a', 'b', 'c')
    await makeDirs(deep)
    expect((await stat(deep)).isDirectory()).toBe(true)
    await makeDirs(deep)
    await makeDirs(dir)
  })

  it('names the file in the way, at the path itself or above it', async () => {
    await writeFile(join(dir, 'afile'), 'x')
    for (const path of [join(dir, 'afile'), join(dir, 'afile', 'sub', 'deeper')]) {
      const e = await makeDirs(path, 'output folder').catch((err: unknown) => err)
      expect(e, path).toBeInstanceOf(InvalidInputError)
      expect((e as Error).message).toBe(`cannot create the output folder ${path}: ${join(dir, 'afile')} is a file, not a folder`)
    }
  })

  it.skipIf(!existsSync('/proc/self'))('returns with an error under /proc, where fs.mkdir({ recursive }) loops forever', async () => {
    const e = await makeDirs('/proc/pedigree-nope/x').catch((err: unknown) => err)
    expect(e).toBeInstanceOf(InvalidInputError)
    expect((e as Error).message).toContain('/proc does not accept new folders')
  })
})
