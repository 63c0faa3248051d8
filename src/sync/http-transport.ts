import { PedigreeError } from '../errors.js'
import type { OpenTransportOptions } from './open-transport.js'
import type { Transport } from './transport.js'

/** The transport to a `pedigree serve` at an `http(s)://` URL. Not built yet. */
export async function openHttpTransport(url: string, _options: OpenTransportOptions = {}): Promise<Transport> {
  throw new PedigreeError('ERR_UNSUPPORTED', `http(s):// remotes are not supported yet (${url}); use a path to a store, or a bundle`, { url })
}
