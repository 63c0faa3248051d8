import { Args } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command.js'
import { removeToken, type TokenInfo } from '../../server/tokens.js'

export default class TokenRemove extends BaseCommand<typeof TokenRemove> {
  static override summary = 'Revoke a token: `pedigree serve` refuses it from then on (a running server takes the change at once).'
  static override examples = ['<%= config.bin %> token remove aps-pipeline']
  static override args = { name: Args.string({ description: 'the token\'s name (see token list)', required: true }) }

  async run(): Promise<TokenInfo> {
    const t = await removeToken(await this.repo(), this.args.name)
    this.log(`removed token ${t.name} (${t.scope})`)
    return t
  }
}
