import { describe, expect, it } from 'vitest'
import { defaultCloneDir } from '../../src/sync/clone.js'

describe('the folder a clone goes to by default', () => {
  it('is named after the source store, whatever kind of URL names it', () => {
    expect(defaultCloneDir('/data/beamline7/.pedigree')).toBe('beamline7')
    expect(defaultCloneDir('/data/beamline7/')).toBe('beamline7')
    expect(defaultCloneDir('file:///data/campaign.pedigree')).toBe('campaign')
    expect(defaultCloneDir('s3://lab-provenance/campaigns/2026')).toBe('2026')
    expect(defaultCloneDir('http://beamline7.lab.example:8080/lab/')).toBe('lab')
  })
  it('never has a colon in it for a bare http URL', () => {
    expect(defaultCloneDir('http://127.0.0.1:8080')).toBe('127.0.0.1')
    expect(defaultCloneDir('https://pedigree.facility.example')).toBe('pedigree.facility.example')
    expect(defaultCloneDir('http://[::1]:8080/')).toBe('clone')
  })
})
