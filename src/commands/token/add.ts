import { Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command.js'
import { addToken, type TokenInfo } from '../../server/tokens.js'

export default class TokenAdd extends BaseCommand<typeof TokenAdd> {
  static override summary = 'Make a bearer token that `pedigree serve` accepts, and print it (the only time it is shown).'
  static override description =
    "The store keeps only the token's sha256, its name, scope and creation time. A read token may fetch, pull and clone; a write token may also push. Clients send it from the environment variable PEDIGREE_TOKEN. While `pedigree serve` runs, this goes through it (it holds the store and serves it to local processes too), and the server accepts the new token at once."
  static override examples = [
    '<%= config.bin %> token add --scope write --name aps-pipeline',
    '<%= config.bin %> token add --scope read --json',
  ]
  static override flags = {
    scope: Flags.string({ description: 'what the token allows', options: ['read', 'write'], required: true }),
    name: Flags.string({ description: 'a label to list and remove it by (default: <scope>-<n>)' }),
  }

  async run(): Promise<TokenInfo & { token: string }> {
    const t = await addToken(await this.repo(), { scope: this.flags.scope, name: this.flags.name })
    this.log(t.token)
    if (!this.jsonEnabled()) process.stderr.write(`token '${t.name}' (${t.scope}) added; it is shown only this once: keep it somewhere safe\n`)
    return t
  }
}
