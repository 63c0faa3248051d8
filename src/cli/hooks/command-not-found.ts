import type { Hook } from '@oclif/core'

/**
 * An unknown command: a clear error and exit 2, as for any other bad input, and under --json
 * the same `{"error": {code, message, data}}` document every command gives (oclif's own
 * answer is a line of text and exit 127).
 */
const hook: Hook<'command_not_found'> = async function ({ id, argv }) {
  const command = id.replace(/:/g, ' ')
  const message = `unknown command '${command}' (see \`${this.config.bin} --help\` for the commands)`
  process.exitCode = 2
  if (argv?.includes('--json')) {
    process.stdout.write(JSON.stringify({ error: { code: 'ERR_INVALID_INPUT', message, data: { command } } }, null, 2) + '\n')
  } else {
    process.stderr.write(`error: ${message}\n`)
  }
}

export default hook
