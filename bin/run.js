#!/usr/bin/env node
import { execute } from '@oclif/core'

// The reader of stdout went away (`pedigree log | head`): end quietly, as git does.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(0)
  throw e
})

await execute({ dir: import.meta.url })
