import { blockstoreSuite } from '../store/blockstore.suite.js'
import { refCellsSuite } from '../store/ref-cells.suite.js'
import { openTmpDaemon } from './fixture.js'

// The client Store of a daemon must behave exactly as the LevelDB store it serves.
blockstoreSuite({ name: 'daemon (level over a unix socket)', open: openTmpDaemon, supports: { persistent: true } })
refCellsSuite({ name: 'daemon (level over a unix socket)', open: openTmpDaemon, supports: { persistent: true } })
