import { PedigreeError } from '../errors.js'
import type { OpenTransportOptions } from './open-transport.js'
import type { Transport } from './transport.js'

/** The transport to a store kept in an S3 bucket at an `s3://bucket/prefix` URL. Not built yet. */
export async function openS3Transport(url: string, _options: OpenTransportOptions = {}): Promise<Transport> {
  throw new PedigreeError('ERR_UNSUPPORTED', `s3:// remotes are not supported yet (${url}); use a path to a store, or a bundle`, { url })
}
