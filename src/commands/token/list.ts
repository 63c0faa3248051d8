import { BaseCommand } from '../../cli/base-command.js'
import { listTokens, type TokenInfo } from '../../server/tokens.js'

export default class TokenList extends BaseCommand<typeof TokenList> {
  static override summary = 'List the tokens `pedigree serve` accepts: name, scope and creation time (never the secret).'
  static override examples = ['<%= config.bin %> token list', '<%= config.bin %> token list --json']

  async run(): Promise<TokenInfo[]> {
    const tokens = await listTokens(await this.repo())
    for (const t of tokens) this.log(`${t.name}\t${t.scope}\t${t.created}`)
    return tokens
  }
}
